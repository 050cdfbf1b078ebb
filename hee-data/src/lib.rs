//! # hee-data
//!
//! Every experiment's data, from the repository or a system package, with a
//! typed error (naming the file and the position) for anything malformed:
//! * [`idx`]: the IDX format of MNIST and Fashion-MNIST, raw or gzip, any
//!   record count;
//! * [`images`] and [`patches`]: PNG decoding, random p×p patches, contrast
//!   normalisation and ZCA whitening (kept, to show fields in pixel space);
//! * [`table`]: numeric CSV with an optional header;
//! * [`dataset`]: the common API — splits, seeded minibatches, scalings —
//!   and [`dataset::load`] for `mnist | fashion | natural | csv:PATH`.

pub mod dataset;
pub mod error;
pub mod idx;
pub mod images;
pub mod patches;
pub mod table;

pub use dataset::{load, DataSpec, Dataset, LoadOptions, Scaling};
pub use error::{DataError, Result};

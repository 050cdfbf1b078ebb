//! # hee-data
//!
//! Dataset loaders for hee. The loaders (IDX/MNIST, natural-image patches,
//! CSV) are the subject of their own issue; the crate exists now so that the
//! workspace has its final shape.

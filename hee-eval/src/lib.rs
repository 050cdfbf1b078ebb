//! # hee-eval
//!
//! Measuring what hee's samplers and models do:
//! * [`classifier`]: a small MLP trained on a data set's own training split,
//!   whose penultimate layer is the feature space of the generation metrics;
//! * [`diagnostics`]: errors of an estimated gaussian against an exact one
//!   (standardised mean error, relative covariance error, KL), and the
//!   integrated autocorrelation time / effective sample size as Stan and
//!   ArviZ define them;
//! * [`likelihood`]: log p(x₀) of held-out data by importance sampling from
//!   the prior, annealed importance sampling and its reverse (the
//!   bidirectional Monte Carlo bounds), and grid quadrature for tiny models;
//! * [`linear`]: the linear anchors, probabilistic PCA and factor analysis
//!   at their maximum likelihood, with exact log-likelihoods;
//! * [`plot`]: line plots rendered to PNG (font vendored, no system fonts);
//! * [`receptive_fields`]: Gabor fits of learned fields, orientation
//!   coverage and second-layer pooling;
//! * [`report`]: result files written atomically (temporary file, then rename);
//! * [`sample_quality`]: generation-quality metrics between feature sets
//!   (Fréchet distance, KID, k-NN precision and recall, nearest-neighbour
//!   distances for memorisation).

pub mod classifier;
pub mod diagnostics;
pub mod likelihood;
pub mod linear;
pub mod plot;
pub mod receptive_fields;
pub mod report;
pub mod sample_quality;

pub use report::EvalError;

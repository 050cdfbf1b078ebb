//! Element-wise kernels over unit-major views (one column per sample), in
//! one place: the maps and zips of the drift and of the learning update,
//! column slices, and finiteness scans. Each loop body is compiled for the
//! machine's vector extension through [`simd::dispatch`].
//!
//! Every buffer this crate allocates is column-contiguous, so the slice
//! loops run; faer's indexing keeps strided views (a caller's transposed
//! batch) correct on the slow path.

pub mod simd;

use faer::reborrow::ReborrowMut;
use faer::{MatMut, MatRef};

use crate::error::{HeeError, Result};
use crate::nonlinearity::Nonlinearity;
use crate::scalar::Real;

/// Checks every entry of a matrix for finiteness.
pub fn check_finite<T: Real>(field: &str, m: MatRef<'_, T>) -> Result<()> {
    // Fast path: a vectorisable scan of contiguous columns; the slow loop
    // below only runs to locate an offender (or on strided views).
    let clean = (0..m.ncols())
        .all(|j| contiguous(m, j).is_some_and(|c| c.iter().fold(true, |ok, v| ok & v.is_finite())));
    if clean {
        return Ok(());
    }
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            let v = m[(i, j)];
            if !v.is_finite() {
                return Err(HeeError::NonFiniteInput {
                    field: field.to_string(),
                    row: i,
                    col: j,
                    value: v.f64(),
                });
            }
        }
    }
    Ok(())
}

/// True when every entry is finite: a vectorisable scan of contiguous
/// columns (strided views take the indexed loop).
pub(crate) fn all_finite<T: Real>(m: MatRef<'_, T>) -> bool {
    (0..m.ncols()).all(|j| match contiguous(m, j) {
        Some(c) => c.iter().fold(true, |ok, v| ok & v.is_finite()),
        None => (0..m.nrows()).all(|i| m[(i, j)].is_finite()),
    })
}

#[inline]
pub(crate) fn zip_map<T: Real>(mut out: MatMut<'_, T>, a: MatRef<'_, T>, f: impl Fn(T) -> T) {
    // Compiled for the machine's vector extension (see `simd`).
    simd::dispatch(
        #[inline(always)]
        move || zip_map_inline(out.rb_mut(), a, f),
    )
}

#[inline(always)]
fn zip_map_inline<T: Real>(mut out: MatMut<'_, T>, a: MatRef<'_, T>, f: impl Fn(T) -> T) {
    for j in 0..out.ncols() {
        match (contiguous_mut(out.rb_mut(), j), contiguous(a, j)) {
            (Some(o), Some(a)) => {
                for (o, &a) in o.iter_mut().zip(a) {
                    *o = f(a);
                }
            }
            _ => {
                for i in 0..out.nrows() {
                    out[(i, j)] = f(a[(i, j)]);
                }
            }
        }
    }
}

#[inline]
pub(crate) fn zip_map2<T: Real>(
    out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(T, T) -> T,
) {
    zip_apply2(out, a, b, move |o, a, b| *o = f(a, b));
}

#[inline]
pub(crate) fn zip_apply2<T: Real>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(&mut T, T, T),
) {
    simd::dispatch(
        #[inline(always)]
        move || zip_apply2_inline(out.rb_mut(), a, b, f),
    )
}

#[inline(always)]
fn zip_apply2_inline<T: Real>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    f: impl Fn(&mut T, T, T),
) {
    for j in 0..out.ncols() {
        match (
            contiguous_mut(out.rb_mut(), j),
            contiguous(a, j),
            contiguous(b, j),
        ) {
            (Some(o), Some(a), Some(b)) => {
                for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                    f(o, a, b);
                }
            }
            _ => {
                for i in 0..out.nrows() {
                    f(&mut out[(i, j)], a[(i, j)], b[(i, j)]);
                }
            }
        }
    }
}
/// `f(out_ij, a_ij, b_ij, v_i)` element-wise, with `v` one value per row
/// (per unit: a layer's 1/σ_i², or a row's learning rate).
#[inline]
pub(crate) fn zip_rows2<T: Real>(
    mut out: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    v: &[T],
    f: impl Fn(&mut T, T, T, T),
) {
    simd::dispatch(
        #[inline(always)]
        move || {
            for j in 0..out.ncols() {
                match (
                    contiguous_mut(out.rb_mut(), j),
                    contiguous(a, j),
                    contiguous(b, j),
                ) {
                    (Some(o), Some(a), Some(b)) => {
                        for (((o, &a), &b), &v) in o.iter_mut().zip(a).zip(b).zip(v) {
                            f(o, a, b, v);
                        }
                    }
                    _ => {
                        for (i, &v) in v.iter().enumerate().take(out.nrows()) {
                            f(&mut out[(i, j)], a[(i, j)], b[(i, j)], v);
                        }
                    }
                }
            }
        },
    )
}

/// Column j as a slice when its rows are contiguous (every internal buffer):
/// slice loops vectorise, indexed ones with bounds checks do not.
#[inline(always)]
pub(crate) fn contiguous<T>(m: MatRef<'_, T>, j: usize) -> Option<&[T]> {
    m.col(j).try_as_col_major().map(|c| c.as_slice())
}

#[inline(always)]
pub(crate) fn contiguous_mut<T>(m: MatMut<'_, T>, j: usize) -> Option<&mut [T]> {
    m.col_mut(j)
        .try_as_col_major_mut()
        .map(|c| c.as_slice_mut())
}

/// Column j of a view the crate allocated itself (always column-contiguous).
#[inline]
pub(crate) fn col<'a, T>(m: MatRef<'a, T>, j: usize) -> &'a [T] {
    contiguous(m, j).expect("internal buffers are column-contiguous")
}

/// Mutable column j of a view the crate allocated itself.
#[inline]
pub(crate) fn col_mut<'a, T>(m: MatMut<'a, T>, j: usize) -> &'a mut [T] {
    contiguous_mut(m, j).expect("internal buffers are column-contiguous")
}

/// Σ v² over every entry, column by column (the order of an indexed loop).
pub(crate) fn sum_sq<T: Real>(m: MatRef<'_, T>) -> f64 {
    let mut s = 0.0;
    for j in 0..m.ncols() {
        for &v in col(m, j) {
            let v = v.f64();
            s += v * v;
        }
    }
    s
}

/// out = f(a) element-wise, one monomorphic loop per nonlinearity.
#[inline]
pub(crate) fn map_f<T: Real>(f: Nonlinearity, out: MatMut<'_, T>, a: MatRef<'_, T>) {
    match f {
        Nonlinearity::Identity => zip_map(out, a, |v| v),
        Nonlinearity::Tanh => zip_map(out, a, |v| v.tanh_fast()),
        Nonlinearity::Softplus => zip_map(out, a, |v| Nonlinearity::Softplus.f(v)),
    }
}

/// g −= f′(x) ⊙ t element-wise, one monomorphic loop per nonlinearity.
#[inline]
pub(crate) fn sub_df_times<T: Real>(
    f: Nonlinearity,
    g: MatMut<'_, T>,
    x: MatRef<'_, T>,
    t: MatRef<'_, T>,
) {
    match f {
        Nonlinearity::Identity => zip_apply2(g, x, t, |g, _, t| *g -= t),
        Nonlinearity::Tanh => zip_apply2(g, x, t, |g, xv, t| {
            let th = xv.tanh_fast();
            *g -= (T::one() - th * th) * t
        }),
        Nonlinearity::Softplus => {
            zip_apply2(g, x, t, |g, xv, t| *g -= Nonlinearity::Softplus.df(xv) * t)
        }
    }
}

#[inline]
pub(crate) fn add_bias<T: Real>(mut m: MatMut<'_, T>, b: &[T]) {
    for j in 0..m.ncols() {
        for (i, &bi) in b.iter().enumerate() {
            m[(i, j)] += bi;
        }
    }
}

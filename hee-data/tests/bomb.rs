//! A gzip IDX decompression bomb: a 1 MiB file whose stream inflates to
//! 1 GiB while its header declares 8,000 images of 28×28 (6.3 MB). It must
//! be rejected with a typed error after reading at most the declared size
//! plus a small margin — measured here as the peak heap the loader holds.
//!
//! Bound: the compressed file (read whole), the declared payload (allocated
//! once from the header, after the header was checked against the file's
//! size), and 1 MiB for the inflater's window and buffers. Without the
//! limit the loader would try to hold the whole 1 GiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use hee_data::idx::read_images;
use hee_data::DataError;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Writes the bomb: a valid header for 8,000 28×28 images, then 1 GiB of
/// zeros, gzip-compressed (the stream is produced chunk by chunk, so the
/// test itself never holds the 1 GiB).
fn write_bomb(path: &std::path::Path) -> usize {
    let f = std::fs::File::create(path).unwrap();
    let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    for x in [2051u32, 8000, 28, 28] {
        e.write_all(&x.to_be_bytes()).unwrap();
    }
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        e.write_all(&chunk).unwrap();
    }
    e.finish().unwrap();
    std::fs::metadata(path).unwrap().len() as usize
}

#[test]
fn gzip_bomb_is_rejected_within_the_declared_size() {
    let dir = std::env::temp_dir().join(format!("hee-bomb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("train-images-idx3-ubyte.gz");
    let file_len = write_bomb(&path);
    let declared = 8000 * 28 * 28;
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = read_images(&path);
    let peak = PEAK.load(Ordering::SeqCst) - base;
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Err(DataError::Format { reason, .. }) => {
            assert!(reason.contains("beyond"), "{reason}");
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    let bound = file_len + 16 + declared + (1 << 20);
    eprintln!("bomb: {file_len} bytes on disk, peak heap {peak} bytes, bound {bound}");
    assert!(peak <= bound, "peak heap {peak} bytes > bound {bound}");
}

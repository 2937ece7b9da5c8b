//! The fast path of gzip decompression: libdeflate, in one call, into a buffer of exactly the
//! size the gzip trailer states.
//!
//! CloudTrail writes every object as one gzip member of a few kilobytes to a few megabytes, so
//! the whole object is in memory anyway and a streaming decoder only costs copies and buffer
//! growth. libdeflate decodes such buffers about twice as fast as zlib.
//!
//! Only what libdeflate can prove it decoded completely is returned: one member that used every
//! input byte and produced exactly the trailer's size. Anything else (several members, a
//! truncated or corrupt stream, a size the trailer lies about) returns `None`, and the caller
//! decodes with the streaming decoder, which handles all of those and names the error.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_SUCCESS,
};

/// Deflate cannot expand data more than 1032 times; a trailer claiming more lies.
const MAX_RATIO: u64 = 1032;
/// Header (10) and trailer (8): the smallest gzip member.
const MIN_MEMBER: usize = 18;

/// One libdeflate decompressor, owned by one thread.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Option<Self> {
        // SAFETY: allocation has no preconditions; a null result is handled.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Decompressor)
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

thread_local! {
    // A decompressor holds ~10 KB of tables: one per scan thread, reused for every object.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// The size the (last) gzip trailer states, modulo 2^32.
fn trailer_size(bytes: &[u8]) -> Option<u64> {
    let tail: [u8; 4] = bytes.get(bytes.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(u64::from(u32::from_le_bytes(tail)))
}

/// Decompresses a single-member gzip object of at most `max` bytes, or returns `None` when the
/// object is anything else (see the module comment).
pub fn single_member(bytes: &[u8], max: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    single_member_into(bytes, max, &mut out).then_some(out)
}

/// As [`single_member`], into `out` (replacing what it held), so that a reader can reuse one
/// buffer for every object instead of asking the allocator, and the kernel, for a new one.
/// Returns whether it decoded the object; when not, `out` holds nothing of use.
pub fn single_member_into(bytes: &[u8], max: u64, out: &mut Vec<u8>) -> bool {
    let Some(size) = claimed_size(bytes, max) else {
        return false;
    };
    // libdeflate writes the output itself: the buffer's spare capacity is handed to it
    // uninitialised (zeroing it first would cost a pass over every decompressed byte), and
    // the length is set only to what it reports written.
    out.clear();
    out.reserve(size);
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Decompressor::new();
        }
        let Some(d) = slot.as_ref() else {
            return false;
        };
        let mut used_in = 0usize;
        let mut made = 0usize;
        // SAFETY: `d` is a live decompressor used by this thread only; the input pointer
        // and length describe a slice borrowed for the duration of the call; the output
        // pointer addresses `size` bytes of capacity reserved above, which libdeflate only
        // writes; the two result pointers are valid locals.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                d.0.as_ptr(),
                bytes.as_ptr().cast::<c_void>(),
                bytes.len(),
                out.as_mut_ptr().cast::<c_void>(),
                size,
                &mut used_in,
                &mut made,
            )
        };
        let complete = result == libdeflate_result_LIBDEFLATE_SUCCESS
            && used_in == bytes.len()
            && made == size;
        if complete {
            // SAFETY: libdeflate succeeded and wrote exactly `made` (= `size`, within the
            // reserved capacity) bytes from the start of the buffer.
            unsafe { out.set_len(made) };
        }
        complete
    })
}

/// The output size the trailer claims, when it is one this path may decode into.
fn claimed_size(bytes: &[u8], max: u64) -> Option<usize> {
    if bytes.len() < MIN_MEMBER {
        return None;
    }
    let size = trailer_size(bytes)?;
    if size == 0 || size > max || size > (bytes.len() as u64).saturating_mul(MAX_RATIO) {
        return None;
    }
    usize::try_from(size).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn one_member_decodes_exactly() {
        let data = br#"{"Records":[{"eventName":"A"}]}"#.repeat(500);
        assert_eq!(single_member(&gz(&data), 1 << 30), Some(data));
    }

    #[test]
    fn what_it_cannot_prove_complete_is_left_to_the_streaming_decoder() {
        let a = b"first member ".repeat(50);
        let b = b"second member".repeat(50);
        // Two members: libdeflate stops after the first.
        let mut two = gz(&a);
        two.extend(gz(&b));
        assert_eq!(single_member(&two, 1 << 30), None);
        // Even when the last trailer matches the first member exactly.
        let mut same = gz(&a);
        same.extend(gz(&b));
        same.extend(gz(&a));
        assert_eq!(single_member(&same, 1 << 30), None);
        // Truncated.
        let whole = gz(&a);
        assert_eq!(single_member(&whole[..whole.len() - 9], 1 << 30), None);
        // A trailer that lies about the size, either way.
        let mut lying = gz(&a);
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&((a.len() as u32) + 1).to_le_bytes());
        assert_eq!(single_member(&lying, 1 << 30), None);
        lying[n - 4..].copy_from_slice(&((a.len() as u32) - 1).to_le_bytes());
        assert_eq!(single_member(&lying, 1 << 30), None);
        // Over the cap, and an expansion deflate cannot produce.
        assert_eq!(single_member(&gz(&a), 10), None);
        let mut bomb = gz(b"x");
        let n = bomb.len();
        bomb[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(single_member(&bomb, u64::MAX), None);
        // Empty content and garbage.
        assert_eq!(single_member(&gz(b""), 1 << 30), None);
        assert_eq!(single_member(&[0x1f, 0x8b, 8, 0, 1, 2, 3], 1 << 30), None);
    }
}

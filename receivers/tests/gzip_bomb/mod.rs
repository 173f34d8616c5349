//! A gzip bomb for the tests of hostile senders: many MiB of zeros in a body about 1,000 times
//! smaller.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

/// A gzip body of `mib` MiB of zeros, about 1,000 times smaller: one deflate block for 1 MiB of
/// zeros, repeated (each decodes against a window of zeros), with a correct trailer.
pub fn gzip_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(1 << 16);
        let start = deflate.total_in();
        loop {
            let consumed = (deflate.total_in() - start) as usize;
            deflate.compress_vec(&input[consumed..], &mut out, flush).unwrap();
            if (deflate.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(1 << 16);
        }
    };
    let first = block(&zeros, FlushCompress::Sync);
    let repeat = block(&zeros, FlushCompress::Sync);
    let last = block(&[], FlushCompress::Finish);
    let mut crc = flate2::Crc::new();
    for _ in 0..mib {
        crc.update(&zeros);
    }
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend_from_slice(&first);
    for _ in 1..mib {
        gz.extend_from_slice(&repeat);
    }
    gz.extend_from_slice(&last);
    gz.extend_from_slice(&crc.sum().to_le_bytes());
    gz.extend_from_slice(&((mib as u32) << 20).to_le_bytes());
    gz
}

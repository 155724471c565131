//! Which input partition a customer's events go to, computed the way the producer's
//! partitioner does, so any instance can tell which member holds a customer. Kafka's Java
//! client (and librdkafka's `murmur2_random`) use murmur2 of the key; librdkafka's own
//! default (`consistent_random`) uses CRC-32. `kafka.input_partitioner` says which.

/// How the input topic is partitioned by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioner {
    /// `toPositive(murmur2(key)) % n`: Kafka's default partitioner (Java clients, Kafka
    /// Streams, librdkafka's `murmur2_random`, what `churnwatch gen` uses).
    Murmur2,
    /// `crc32(key) % n`: librdkafka's default (`consistent_random`), the default of
    /// clients built on it (confluent-kafka for Python, Go, .NET) unless configured.
    Crc32,
}

impl Partitioner {
    /// Parses the config value.
    pub fn parse(s: &str) -> Option<Partitioner> {
        match s {
            "murmur2" => Some(Partitioner::Murmur2),
            "crc32" => Some(Partitioner::Crc32),
            _ => None,
        }
    }

    /// The partition of `key` among `n` (> 0).
    pub fn partition(self, key: &[u8], n: i32) -> i32 {
        let n = n.max(1) as u32;
        match self {
            Partitioner::Murmur2 => ((murmur2(key) as u32 & 0x7fff_ffff) % n) as i32,
            Partitioner::Crc32 => (crc32fast::hash(key) % n) as i32,
        }
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        for (key, want) in [
            (&b"21"[..], -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ] {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }
}

//! G.711 µ-law and A-law (ITU-T G.711), the codecs of the public phone network.
//!
//! Encoders follow the segment/mantissa algorithm of the reference
//! implementation (ITU-T G.191 `g711.c`); decoders are 256-entry tables
//! built from the same rules at compile time.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    let exponent = (7 - ((s as u32) << 17).leading_zeros().min(7)) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

const fn ulaw_decode_const(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = ((b >> 4) & 0x07) as i32;
    let mantissa = (b & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let s = (sample as i32) >> 3;
    let (mask, mag) = if s >= 0 { (0xD5u8, s) } else { (0x55u8, -s - 1) };
    let mag = mag.min(0x0FFF);
    let code = if mag < 32 {
        (mag >> 1) as u8
    } else {
        let seg = (31 - (mag as u32).leading_zeros()) as i32 - 4; // 1..=7
        ((seg << 4) | ((mag >> seg) & 0x0F)) as u8
    };
    code ^ mask
}

const fn alaw_decode_const(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let seg = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw { alaw_decode_const(i as u8) } else { ulaw_decode_const(i as u8) };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_TABLE[byte as usize]
}

pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_TABLE[byte as usize]
}

pub fn ulaw_encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| ulaw_encode(s)).collect()
}

pub fn ulaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| ulaw_decode(b)).collect()
}

pub fn alaw_encode_all(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&s| alaw_encode(s)).collect()
}

pub fn alaw_decode_all(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| alaw_decode(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the G.711 tables (and every reference implementation).
    #[test]
    fn ulaw_matches_the_standard() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0xFE), 8); // smallest positive step
        assert_eq!(ulaw_decode(0xEF), 132);
        assert_eq!(ulaw_encode(100), 0xF2);
        assert_eq!(ulaw_encode(1000), 0xCE);
    }

    #[test]
    fn alaw_matches_the_standard() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-8), 0x55);
        assert_eq!(alaw_encode(32767), 0xAA);
        assert_eq!(alaw_encode(-32768), 0x2A);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(1000), 0xFA);
        assert_eq!(alaw_decode(0xFA), 1008);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let u = ulaw_decode(b);
            // 0x7F and 0xFF both decode to 0 (µ-law has two zeros).
            if b != 0x7F {
                assert_eq!(ulaw_encode(u), b, "µ-law code {b:#04x} -> {u}");
            }
            assert_eq!(alaw_encode(alaw_decode(b)), b, "A-law code {b:#04x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded() {
        for s in (-32000i32..32000).step_by(37) {
            let s = s as i16;
            let err_u = (ulaw_decode(ulaw_encode(s)) as i32 - s as i32).abs();
            let err_a = (alaw_decode(alaw_encode(s)) as i32 - s as i32).abs();
            let bound = (s as i32).abs() / 16 + 16;
            assert!(err_u <= bound, "µ-law {s}: error {err_u}");
            assert!(err_a <= bound, "A-law {s}: error {err_a}");
        }
    }
}

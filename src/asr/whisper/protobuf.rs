//! The protobuf wire format, as much of it as the decoder graph rewrite
//! (`graph.rs`) needs: fields are read with their raw bytes, so everything
//! the rewrite does not touch is copied through byte for byte.

/// Bytes that are not the protobuf message they should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated varint")]
    TruncatedVarint,
    #[error("varint longer than 10 bytes")]
    VarintTooLong,
    #[error("field length overflows")]
    LengthOverflow,
    #[error("truncated field")]
    TruncatedField,
    #[error("unsupported wire type {wire} for field {field}")]
    UnsupportedWireType { wire: u8, field: u32 },
    #[error("expected exactly one field {field}")]
    NotSingle { field: u32 },
    #[error("field {field} #{nth} not found")]
    FieldMissing { field: u32, nth: usize },
}

pub const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
pub const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// One field of a message: for length-delimited fields `body` is the
/// payload; `raw` is the whole field (tag included) for copying through.
pub struct Field<'a> {
    pub num: u32,
    pub wire: u8,
    pub varint: u64,
    pub body: &'a [u8],
    pub raw: &'a [u8],
}

pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).ok_or(WireError::TruncatedVarint)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::VarintTooLong)
}

pub fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, WireError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let tag = read_varint(buf, &mut pos)?;
        let (num, wire) = ((tag >> 3) as u32, (tag & 7) as u8);
        let (varint, body) = match wire {
            WIRE_VARINT => (read_varint(buf, &mut pos)?, &buf[pos..pos]),
            WIRE_FIXED64 | WIRE_FIXED32 | WIRE_LEN => {
                let n = match wire {
                    WIRE_FIXED64 => 8,
                    WIRE_FIXED32 => 4,
                    _ => usize::try_from(read_varint(buf, &mut pos)?).map_err(|_| WireError::LengthOverflow)?,
                };
                let end = pos.checked_add(n).ok_or(WireError::LengthOverflow)?;
                let body = buf.get(pos..end).ok_or(WireError::TruncatedField)?;
                pos = end;
                (0, body)
            }
            other => return Err(WireError::UnsupportedWireType { wire: other, field: num }),
        };
        out.push(Field { num, wire, varint, body, raw: &buf[start..pos] });
    }
    Ok(out)
}

pub fn single<'a, 'b>(f: &'b [Field<'a>], num: u32) -> Result<&'b Field<'a>, WireError> {
    let mut it = f.iter().filter(|x| x.num == num && x.wire == WIRE_LEN);
    match (it.next(), it.next()) {
        (Some(x), None) => Ok(x),
        _ => Err(WireError::NotSingle { field: num }),
    }
}

/// Repeated int64 field `num`, packed or not.
pub fn ints(f: &[Field], num: u32) -> Result<Vec<i64>, WireError> {
    let mut out = Vec::new();
    for x in f.iter().filter(|x| x.num == num) {
        if x.wire == WIRE_LEN {
            let mut pos = 0;
            while pos < x.body.len() {
                out.push(read_varint(x.body, &mut pos)? as i64);
            }
        } else {
            out.push(x.varint as i64);
        }
    }
    Ok(out)
}

/// `buf` with the `nth` length-delimited field `num` replaced by `f(body)`.
pub fn map_len_field<E: From<WireError>>(
    buf: &[u8],
    num: u32,
    nth: usize,
    f: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    let all = fields(buf)?;
    let target = all
        .iter()
        .enumerate()
        .filter(|(_, x)| x.num == num && x.wire == WIRE_LEN)
        .nth(nth)
        .map(|(k, _)| k)
        .ok_or(WireError::FieldMissing { field: num, nth })?;
    let replacement = f(all[target].body)?;
    let mut out = Vec::with_capacity(buf.len() + replacement.len());
    for (k, x) in all.iter().enumerate() {
        if k == target {
            put_len(&mut out, num, &replacement);
        } else {
            out.extend_from_slice(x.raw);
        }
    }
    Ok(out)
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_tag(out: &mut Vec<u8>, num: u32, wire: u8) {
    put_varint(out, (u64::from(num) << 3) | u64::from(wire));
}

pub fn put_len(out: &mut Vec<u8>, num: u32, body: &[u8]) {
    put_tag(out, num, WIRE_LEN);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_an_error() {
        for v in [0u64, 1, 127, 128, 300, 448, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut pos = 0;
            assert_eq!(read_varint(&b, &mut pos).unwrap(), v);
            assert_eq!(pos, b.len());
        }
        assert_eq!(read_varint(&[0x80, 0x80], &mut 0), Err(WireError::TruncatedVarint));
        assert!(fields(&[0x0a, 0x05, 1, 2]).is_err(), "length past the end");
        assert!(fields(&[0x0b]).is_err(), "group wire type");
    }
}

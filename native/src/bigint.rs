//! Integers beyond 64 bits, both ways, without a round trip through
//! Python: an Erlang bignum and a `num_bigint::BigInt` meet through the
//! external term format (in Rust), a `BigInt` and a Python `int` through
//! pyo3's conversion (CPython's byte-array API).
//!
//! Erlang integers have a size limit (about 2^25 bits) that Python's do
//! not: `to_term` gives `None` for an integer Erlang cannot hold.

use num_bigint::{BigInt, Sign};
use rustler::{Env, Term};

const VERSION: u8 = 131;
const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const SMALL_BIG_EXT: u8 = 110;
const LARGE_BIG_EXT: u8 = 111;

/// The integer `term` (any size); `None` when it is not an integer.
pub fn from_term(term: Term<'_>) -> Option<BigInt> {
    let etf = term.to_binary();
    from_etf(etf.as_slice())
}

fn from_etf(etf: &[u8]) -> Option<BigInt> {
    let (&version, rest) = etf.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&tag, rest) = rest.split_first()?;
    let (sign, digits) = match tag {
        SMALL_INTEGER_EXT => return rest.first().map(|&b| BigInt::from(b)),
        INTEGER_EXT => {
            let bytes: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            return Some(BigInt::from(i32::from_be_bytes(bytes)));
        }
        SMALL_BIG_EXT => {
            let n = usize::from(*rest.first()?);
            (*rest.get(1)?, rest.get(2..2 + n)?)
        }
        LARGE_BIG_EXT => {
            let len: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            let n = usize::try_from(u32::from_be_bytes(len)).ok()?;
            (*rest.get(4)?, rest.get(5..5 + n)?)
        }
        _ => return None,
    };
    let sign = if sign == 0 { Sign::Plus } else { Sign::Minus };
    Some(BigInt::from_bytes_le(sign, digits))
}

/// `big` as an Erlang integer; `None` when it is beyond Erlang's limit.
pub fn to_term<'a>(env: Env<'a>, big: &BigInt) -> Option<Term<'a>> {
    let etf = to_etf(big)?;
    env.binary_to_term(&etf).map(|(term, _)| term)
}

fn to_etf(big: &BigInt) -> Option<Vec<u8>> {
    let (sign, digits) = big.to_bytes_le();
    let mut etf = Vec::with_capacity(digits.len() + 7);
    etf.push(VERSION);
    match u8::try_from(digits.len()) {
        Ok(n) => etf.extend([SMALL_BIG_EXT, n]),
        Err(_) => {
            let n = u32::try_from(digits.len()).ok()?;
            etf.push(LARGE_BIG_EXT);
            etf.extend(n.to_be_bytes());
        }
    }
    etf.push(u8::from(sign == Sign::Minus));
    etf.extend(digits);
    Some(etf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(big: &BigInt) -> BigInt {
        from_etf(&to_etf(big).unwrap()).unwrap()
    }

    #[test]
    fn big_integers_survive_the_external_format() {
        let two = BigInt::from(2);
        for exp in [0u32, 1, 63, 64, 65, 2039, 2040, 2041, 100_000] {
            let v = two.pow(exp);
            assert_eq!(round_trip(&v), v);
            assert_eq!(round_trip(&-v.clone()), -v.clone());
            assert_eq!(round_trip(&(v.clone() - 1)), v.clone() - 1);
        }
        assert_eq!(round_trip(&BigInt::from(0)), BigInt::from(0));
    }

    #[test]
    fn small_encodings_decode() {
        assert_eq!(from_etf(&[131, 97, 200]), Some(BigInt::from(200)));
        assert_eq!(
            from_etf(&[131, 98, 255, 255, 255, 254]),
            Some(BigInt::from(-2))
        );
    }

    #[test]
    fn malformed_encodings_are_refused() {
        assert_eq!(from_etf(&[]), None);
        assert_eq!(from_etf(&[130, 97, 1]), None);
        assert_eq!(from_etf(&[131, 100]), None);
        assert_eq!(from_etf(&[131, 110, 9, 0, 1]), None);
        assert_eq!(from_etf(&[131, 111, 255, 255, 255, 255, 0, 1]), None);
    }
}

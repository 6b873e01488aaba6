//! Mandarin numbers → digits, as callers say them on the phone.
//!
//! A number read digit by digit ("幺三八零零", with 幺 for one, clearer
//! over a line than 一, and 两 for two) is one digit per character; a
//! number said as a quantity ("十五", "二十三", "三百零五", "两千") is read
//! by its place words. The text has already been split one character per
//! token (see `script`), so these work on tokens like the English reader.

/// The value of a digit character.
pub(crate) fn digit_value(token: &str) -> Option<u64> {
    Some(match token {
        "零" | "〇" => 0,
        "一" | "幺" => 1,
        "二" | "两" => 2,
        "三" => 3,
        "四" => 4,
        "五" => 5,
        "六" => 6,
        "七" => 7,
        "八" => 8,
        "九" => 9,
        _ => return None,
    })
}

/// The value of a place character: ten, hundred, thousand.
fn place_value(token: &str) -> Option<u64> {
    Some(match token {
        "十" => 10,
        "百" => 100,
        "千" => 1000,
        _ => return None,
    })
}

/// Whether `token` can start a Mandarin number.
pub(crate) fn starts_number(token: &str) -> bool {
    digit_value(token).is_some() || token == "十"
}

/// Reads a Mandarin number at `tokens[i..]`: its digits and how many
/// tokens it used. Digits without place words are read one by one
/// ("一二三" → 123, as a caller reading a number means); with place words
/// the quantity is read ("二十三" → 23, "十五" → 15, "三百零五" → 305)
/// and ends where the place words stop making sense.
pub(crate) fn read(tokens: &[String], i: usize) -> Option<(String, usize)> {
    let at = |k: usize| tokens.get(k).map(String::as_str);
    let first = at(i)?;
    if !starts_number(first) {
        return None;
    }
    if let Some(q) = read_quantity(tokens, i) {
        return Some(q);
    }
    // Digit by digit.
    let digits: String =
        (i..tokens.len()).map_while(|k| digit_value(&tokens[k])).map(|d| char::from(b'0' + d as u8)).collect();
    let used = digits.len();
    (used > 0).then_some((digits, used))
}

/// A quantity with place words, or None when there is no place word right
/// after the first digit (or a lone 十 first).
fn read_quantity(tokens: &[String], i: usize) -> Option<(String, usize)> {
    let at = |k: usize| tokens.get(k).map(String::as_str);
    let mut k = i;
    let mut value = 0u64;
    // The smallest place said so far: each place must be smaller than the last.
    let mut last_place = u64::MAX;
    loop {
        let (digit, digit_len) = match at(k).and_then(digit_value) {
            Some(d) => (d, 1),
            // "十五": ten on its own means one ten.
            None if at(k) == Some("十") && k == i => (1, 0),
            None => break,
        };
        let place = at(k + digit_len).and_then(place_value);
        match place {
            Some(p) if p < last_place && digit > 0 => {
                value += digit * p;
                last_place = p;
                k += digit_len + 1;
                // "三百零五": a zero holds an empty place.
                if at(k) == Some("零") && at(k + 1).and_then(digit_value).is_some_and(|d| d > 0) {
                    k += 1;
                    last_place = 10;
                }
            }
            // The units after a place word: "二十三".
            _ if k > i && last_place <= 1000 && digit > 0 && digit_len == 1 && last_place > 1 => {
                value += digit;
                k += 1;
                break;
            }
            _ => break,
        }
    }
    (k > i && last_place != u64::MAX).then(|| (value.to_string(), k - i))
}

/// Characters that frame a digit string without changing it: "我的号码是
/// …" (my number is), "按…" (press), "分机" (extension), "账户" (account).
pub(crate) fn is_digit_carrier(token: &str) -> bool {
    matches!(
        token,
        "我" | "的"
            | "号"
            | "码"
            | "是"
            | "按"
            | "拨"
            | "分"
            | "机"
            | "账"
            | "户"
            | "卡"
            | "电"
            | "话"
            | "密"
            | "就"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(text: &str) -> Vec<String> {
        let tokens: Vec<String> = text.chars().map(String::from).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            match read(&tokens, i) {
                Some((d, used)) => {
                    out.push(d);
                    i += used;
                }
                None => {
                    out.push(tokens[i].clone());
                    i += 1;
                }
            }
        }
        out
    }

    #[test]
    fn phone_digits_are_read_one_by_one() {
        assert_eq!(digits("幺三八零零"), ["13800"]);
        assert_eq!(digits("一二三四"), ["1234"]);
        assert_eq!(digits("两"), ["2"]);
        assert_eq!(digits("〇九"), ["09"]);
    }

    #[test]
    fn quantities_are_read_by_their_place_words() {
        for (text, want) in [
            ("十", "10"),
            ("十五", "15"),
            ("二十", "20"),
            ("二十三", "23"),
            ("九十九", "99"),
            ("一百", "100"),
            ("三百零五", "305"),
            ("两千", "2000"),
            ("一千二百三十四", "1234"),
        ] {
            assert_eq!(digits(text), [want], "{text}");
        }
    }

    #[test]
    fn other_characters_end_a_number() {
        assert_eq!(digits("两杯"), ["2", "杯"]);
        assert_eq!(digits("二十三号"), ["23", "号"]);
        assert_eq!(digits("账单"), ["账", "单"]);
        assert_eq!(digits("百"), ["百"]);
    }
}

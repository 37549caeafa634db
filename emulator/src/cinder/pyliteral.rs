//! The one Python literal Cinder's list filters take: a flat dict (`{'k': 'v', "n": 1}`), as
//! openstackclient, cinderclient and tempest send `metadata=` (Cinder reads it with
//! `ast.literal_eval`). Anything else — nesting, calls, names — is refused.

use serde_json::{Map, Value};

/// A flat dict of scalars as a JSON object of strings, or `None` if `text` is not one.
pub fn dict(text: &str) -> Option<Value> {
    let mut p = Parser { bytes: text.as_bytes(), at: 0 };
    p.skip_ws();
    p.expect(b'{')?;
    let mut out = Map::new();
    p.skip_ws();
    if p.peek() == Some(b'}') {
        p.at += 1;
    } else {
        loop {
            p.skip_ws();
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            let value = p.scalar()?;
            out.insert(key, Value::String(value));
            p.skip_ws();
            match p.next()? {
                b',' => {
                    p.skip_ws();
                    if p.peek() == Some(b'}') {
                        p.at += 1;
                        break;
                    }
                }
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.skip_ws();
    (p.at == p.bytes.len()).then_some(Value::Object(out))
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    /// A quoted string, `'...'` or `"..."`, with the common backslash escapes.
    fn string(&mut self) -> Option<String> {
        let quote = self.next()?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b if b == quote => break,
                b'\\' => out.push(match self.next()? {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    other @ (b'\\' | b'\'' | b'"') => other,
                    _ => return None,
                }),
                b => out.push(b),
            }
        }
        String::from_utf8(out).ok()
    }

    /// A string, an integer, or True/False/None as the text Cinder compares.
    fn scalar(&mut self) -> Option<String> {
        match self.peek()? {
            b'\'' | b'"' => self.string(),
            _ => {
                let start = self.at;
                while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                    self.at += 1;
                }
                let word = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
                let numeric = !word.is_empty()
                    && word.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit() || b == b'.');
                (matches!(word, "True" | "False" | "None") || numeric).then(|| word.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_single_quoted_dict_reads_as_a_json_object() {
        assert_eq!(dict("{'k': 'v'}"), Some(json!({"k": "v"})));
        assert_eq!(dict(r#"{"a":"1", 'b' : 2,}"#), Some(json!({"a": "1", "b": "2"})));
        assert_eq!(dict("{}"), Some(json!({})));
        assert_eq!(dict(r"{'q': 'it\'s'}"), Some(json!({"q": "it's"})));
    }

    #[test]
    fn anything_but_a_flat_dict_of_scalars_is_refused() {
        for hostile in [
            "",
            "{",
            "{'k': 'v'",
            "{'k': 'v'} trailing",
            "{'k': {'nested': 'x'}}",
            "{'k': ['list']}",
            "{'k': __import__('os')}",
            "{k: 'v'}",
            "{'k' 'v'}",
            "{'unterminated: 'v'}",
            "['k', 'v']",
            r"{'k': '\x41'}",
        ] {
            assert_eq!(dict(hostile), None, "{hostile:?} must be refused");
        }
    }
}

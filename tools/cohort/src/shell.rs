//! POSIX shell quoting, and reading quoted words back.

/// Characters that never need quoting in a POSIX shell word.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c)
}

/// Quote one word so that `sh` reads it back unchanged.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_safe) {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quote every word and join them with spaces.
pub fn join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Split a line into words as `sh` would for the quoting `join` produces:
/// blanks separate words, '...' quotes literally, a backslash outside
/// quotes escapes the next character, "..." quotes with `\"` and `\\`
/// escapes. No expansions.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = vec![];
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("backslash at the end of the line".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(quote("ls"), "ls");
        assert_eq!(quote("/usr/lib/x-y_z.1"), "/usr/lib/x-y_z.1");
        assert_eq!(quote("A=b,c:d@e%f+g"), "A=b,c:d@e%f+g");
    }

    #[test]
    fn special_words_are_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("*"), "'*'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("a\nb"), "'a\nb'");
        assert_eq!(quote("~"), "'~'");
    }

    #[test]
    fn join_words() {
        assert_eq!(join(&["echo", "a b", "c"]), "echo 'a b' c");
        assert_eq!(join::<&str>(&[]), "");
    }

    #[test]
    fn split_reads_back_join() {
        let words = ["a b", "", "it's", "x\ny", "$HOME", "plain", "'\\'"];
        assert_eq!(split(&join(&words)).unwrap(), words);
        assert_eq!(split("  a\tb  ").unwrap(), ["a", "b"]);
        assert_eq!(
            split(r#"a\ b "c \"d\" \x""#).unwrap(),
            ["a b", r#"c "d" \x"#]
        );
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
        assert!(split("end\\").is_err());
        assert!(split("").unwrap().is_empty());
    }
}

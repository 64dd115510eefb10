//! A small command-line parser: long options (`--name VALUE`,
//! `--name=VALUE`), short aliases (`-n VALUE`), boolean flags, positional
//! arguments, and a trailing command after `--` or after the last expected
//! positional argument.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// One option a subcommand accepts.
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// Takes a value (otherwise a boolean flag).
    pub value: bool,
}

pub const fn val(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        value: true,
    }
}

pub const fn flag(long: &'static str, short: Option<char>) -> Opt {
    Opt {
        long,
        short,
        value: false,
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    values: HashMap<&'static str, String>,
    flags: Vec<&'static str>,
    pub positional: Vec<String>,
    /// Everything after `--`, or after `max_positional` positionals.
    pub rest: Vec<String>,
}

/// Parse `args` against `opts`. Once `max_positional` positional arguments
/// have been seen (if given), the next non-option argument and everything
/// after it go to `rest`, as does everything after `--`.
pub fn parse(
    args: &[String],
    opts: &[Opt],
    max_positional: Option<usize>,
) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.rest.extend_from_slice(&args[i..]);
            break;
        }
        let (opt, inline) = if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let opt = opts
                .iter()
                .find(|o| o.long == name)
                .ok_or_else(|| format!("unknown option --{name}"))?;
            (opt, inline)
        } else if a.len() > 1 && a.starts_with('-') && !is_number(a) {
            let mut chars = a[1..].chars();
            let c = chars.next().unwrap_or('-');
            let opt = opts
                .iter()
                .find(|o| o.short == Some(c))
                .ok_or_else(|| format!("unknown option -{c}"))?;
            let attached: String = chars.collect();
            (opt, (!attached.is_empty()).then_some(attached))
        } else {
            if max_positional.is_some_and(|m| p.positional.len() >= m) {
                p.rest.extend_from_slice(&args[i - 1..]);
                break;
            }
            p.positional.push(a.clone());
            continue;
        };
        if opt.value {
            let v = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("option --{} needs a value", opt.long))?;
                    i += 1;
                    v.clone()
                }
            };
            p.values.insert(opt.long, v);
        } else {
            if inline.is_some() {
                return Err(format!("option --{} takes no value", opt.long));
            }
            p.flags.push(opt.long);
        }
    }
    Ok(p)
}

fn is_number(s: &str) -> bool {
    s.parse::<i64>().is_ok()
}

impl Parsed {
    pub fn flag(&self, long: &str) -> bool {
        self.flags.contains(&long)
    }

    pub fn get(&self, long: &str) -> Option<&str> {
        self.values.get(long).map(String::as_str)
    }

    /// The option's value parsed as T, or `default` if absent.
    pub fn get_or<T: FromStr>(&self, long: &str, default: T) -> Result<T, String>
    where
        T::Err: Display,
    {
        match self.get(long) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| format!("invalid value {v:?} for --{long}: {e}")),
        }
    }
}

/// Parse a node list such as `0,2,4-6` into sorted unique node numbers.
pub fn parse_node_list(s: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("invalid node list {s:?} (expected e.g. 0,2-3)");
    let mut out = vec![];
    for part in s.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: u32 = a.trim().parse().map_err(|_| bad())?;
            let b: u32 = b.trim().parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.push(part.parse().map_err(|_| bad())?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[
        val("nodes", Some('n')),
        val("timeout", None),
        flag("help", Some('h')),
    ];

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_flags_positionals() {
        let p = parse(&v(&["-n", "3", "--timeout=9", "x", "-h"]), OPTS, None).unwrap();
        assert_eq!(p.get("nodes"), Some("3"));
        assert_eq!(p.get_or("timeout", 0u64), Ok(9));
        assert_eq!(p.get_or("nodes", 0u32), Ok(3));
        assert_eq!(p.get_or("absent", 7u32), Ok(7));
        assert!(p.flag("help"));
        assert_eq!(p.positional, v(&["x"]));
        assert!(p.rest.is_empty());
    }

    #[test]
    fn attached_short_value() {
        let p = parse(&v(&["-n4"]), OPTS, None).unwrap();
        assert_eq!(p.get("nodes"), Some("4"));
    }

    #[test]
    fn double_dash_ends_options() {
        let p = parse(
            &v(&["1", "--timeout", "5", "--", "ls", "-l", "--help"]),
            OPTS,
            Some(1),
        )
        .unwrap();
        assert_eq!(p.positional, v(&["1"]));
        assert_eq!(p.get("timeout"), Some("5"));
        assert_eq!(p.rest, v(&["ls", "-l", "--help"]));
    }

    #[test]
    fn command_after_last_positional() {
        let p = parse(&v(&["1", "echo", "-n", "hi"]), OPTS, Some(1)).unwrap();
        assert_eq!(p.positional, v(&["1"]));
        assert_eq!(p.rest, v(&["echo", "-n", "hi"]));
    }

    #[test]
    fn negative_numbers_are_positional() {
        let p = parse(&v(&["-1"]), OPTS, None).unwrap();
        assert_eq!(p.positional, v(&["-1"]));
    }

    #[test]
    fn errors() {
        assert!(parse(&v(&["--bogus"]), OPTS, None).is_err());
        assert!(parse(&v(&["-z"]), OPTS, None).is_err());
        assert!(parse(&v(&["--timeout"]), OPTS, None).is_err());
        assert!(parse(&v(&["--help=yes"]), OPTS, None).is_err());
        let p = parse(&v(&["--timeout", "soon"]), OPTS, None).unwrap();
        let e = p.get_or("timeout", 0u64).unwrap_err();
        assert!(e.contains("--timeout"), "{e}");
    }

    #[test]
    fn node_lists() {
        assert_eq!(parse_node_list("0"), Ok(vec![0]));
        assert_eq!(parse_node_list("3,1,1"), Ok(vec![1, 3]));
        assert_eq!(parse_node_list("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_node_list("").is_err());
        assert!(parse_node_list("2-1").is_err());
        assert!(parse_node_list("a").is_err());
        assert!(parse_node_list("1,").is_err());
    }
}

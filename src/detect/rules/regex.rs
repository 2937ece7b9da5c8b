//! A small regular-expression engine for rule conditions, with no backtracking.
//!
//! Patterns come from rule files that anyone may write, and are run against every record a rule
//! looks at, so matching must stay linear in the length of the value whatever the pattern: the
//! pattern is compiled to a Thompson NFA and run as a Pike VM (all threads advance together, each
//! program counter at most once per input position). There are no captures and no
//! back-references; a match is a yes or a no.
//!
//! Supported: literals, `.` (any character but a newline), classes `[a-z0-9_]` and `[^...]`,
//! escapes `\.` (any ASCII punctuation), `\d` `\w` `\s` and their negations `\D` `\W` `\S`
//! (ASCII classes), `\n` `\r` `\t`, the repetitions `*` `+` `?` `{m}` `{m,}` `{m,n}` (counts up
//! to 100; a trailing `?` for laziness is accepted and changes nothing), alternation `|`, groups
//! `( )` and `(?: )`, and the anchors `^` `$`.

use std::fmt;

/// Longest pattern accepted, in characters.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// Largest count in `{m,n}`.
pub const MAX_REPEAT: u32 = 100;
/// Largest compiled program. Nested counted repetitions multiply (`(a{100}){100}`), so the
/// size is checked before anything is built.
const MAX_PROGRAM: usize = 20_000;
/// Deepest nesting of groups.
const MAX_NESTING: usize = 32;

/// Why a pattern does not compile, and where (0-based character position in the pattern).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RegexError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.message)
    }
}

/// A compiled pattern.
#[derive(Clone)]
pub struct Regex {
    pattern: String,
    program: Vec<Inst>,
    classes: Vec<Class>,
    ignore_case: bool,
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Regex").field(&self.pattern).finish()
    }
}

#[derive(Clone, Debug)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }

    fn of(ranges: &[(char, char)], negated: bool) -> Class {
        Class {
            ranges: ranges.to_vec(),
            negated,
        }
    }
}

const DIGIT: &[(char, char)] = &[('0', '9')];
const WORD: &[(char, char)] = &[('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];
const SPACE: &[(char, char)] = &[('\t', '\r'), (' ', ' ')];

#[derive(Clone, Debug)]
enum Node {
    Empty,
    Char(char),
    Any,
    Class(Class),
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: u32,
        max: Option<u32>,
    },
}

#[derive(Clone, Copy, Debug)]
enum Inst {
    Char(char),
    Any,
    Class(usize),
    Start,
    End,
    Split(usize, usize),
    Jmp(usize),
    Match,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn error<T>(&self, position: usize, message: impl Into<String>) -> Result<T, RegexError> {
        Err(RegexError {
            position,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn alternation(&mut self, depth: usize) -> Result<Node, RegexError> {
        let mut branches = vec![self.concat(depth)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            branches.push(self.concat(depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self, depth: usize) -> Result<Node, RegexError> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(depth)?;
            items.push(self.quantified(atom)?);
        }
        Ok(match items.len() {
            0 => Node::Empty,
            1 => items.pop().unwrap_or(Node::Empty),
            _ => Node::Concat(items),
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Node, RegexError> {
        let at = self.pos;
        let Some(c) = self.peek() else {
            return self.error(at, "pattern ends where something was expected");
        };
        self.pos += 1;
        match c {
            '(' => {
                if self.peek() == Some('?') {
                    if self.peek_at(1) == Some(':') {
                        self.pos += 2;
                    } else {
                        return self.error(
                            at,
                            "only `(?:` is supported after `(`: no flags, lookaround or names",
                        );
                    }
                }
                if depth + 1 > MAX_NESTING {
                    return self.error(at, format!("groups nest deeper than {MAX_NESTING}"));
                }
                let inner = self.alternation(depth + 1)?;
                if self.peek() != Some(')') {
                    return self.error(at, "this `(` is never closed");
                }
                self.pos += 1;
                Ok(inner)
            }
            '[' => self.class(at),
            '.' => Ok(Node::Any),
            '^' => Ok(Node::Start),
            '$' => Ok(Node::End),
            '\\' => self.escape(at, false).map(|e| match e {
                Escaped::Char(c) => Node::Char(c),
                Escaped::Class(class) => Node::Class(class),
            }),
            '*' | '+' | '?' => self.error(at, format!("`{c}` has nothing to repeat")),
            '{' => self.error(
                at,
                "`{` has nothing to repeat; write `\\{` for a literal brace",
            ),
            c => Ok(Node::Char(c)),
        }
    }

    fn escape(&mut self, at: usize, in_class: bool) -> Result<Escaped, RegexError> {
        let Some(c) = self.peek() else {
            return self.error(at, "pattern ends with a lone `\\`");
        };
        self.pos += 1;
        Ok(match c {
            'd' => Escaped::Class(Class::of(DIGIT, false)),
            'w' => Escaped::Class(Class::of(WORD, false)),
            's' => Escaped::Class(Class::of(SPACE, false)),
            'D' | 'W' | 'S' if in_class => {
                return self.error(at, format!("`\\{c}` is not supported inside [ ]"));
            }
            'D' => Escaped::Class(Class::of(DIGIT, true)),
            'W' => Escaped::Class(Class::of(WORD, true)),
            'S' => Escaped::Class(Class::of(SPACE, true)),
            'n' => Escaped::Char('\n'),
            'r' => Escaped::Char('\r'),
            't' => Escaped::Char('\t'),
            c if c.is_ascii_punctuation() || c == ' ' => Escaped::Char(c),
            c => return self.error(at, format!("unsupported escape `\\{c}`")),
        })
    }

    fn class(&mut self, at: usize) -> Result<Node, RegexError> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let item_at = self.pos;
            let Some(c) = self.peek() else {
                return self.error(at, "this `[` is never closed");
            };
            self.pos += 1;
            // A `]` right after `[` or `[^` is a literal, as in POSIX.
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => match self.escape(item_at, true)? {
                    Escaped::Char(c) => c,
                    Escaped::Class(class) => {
                        ranges.extend(class.ranges);
                        continue;
                    }
                },
                c => c,
            };
            // `a-z`, unless the `-` is the last thing before `]`.
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                self.pos += 1;
                let hi_at = self.pos;
                let hi = match self.peek() {
                    Some('\\') => {
                        self.pos += 1;
                        match self.escape(hi_at, true)? {
                            Escaped::Char(c) => c,
                            Escaped::Class(_) => {
                                return self.error(hi_at, "a class like `\\d` cannot end a range")
                            }
                        }
                    }
                    Some(c) => {
                        self.pos += 1;
                        c
                    }
                    None => return self.error(at, "this `[` is never closed"),
                };
                if hi < lo {
                    return self.error(item_at, format!("range `{lo}-{hi}` is backwards"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class(Class { ranges, negated }))
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, RegexError> {
        let at = self.pos;
        let (min, max) = match self.peek() {
            Some('*') => {
                self.pos += 1;
                (0, None)
            }
            Some('+') => {
                self.pos += 1;
                (1, None)
            }
            Some('?') => {
                self.pos += 1;
                (0, Some(1))
            }
            Some('{') => {
                self.pos += 1;
                self.counts(at)?
            }
            _ => return Ok(atom),
        };
        if matches!(atom, Node::Start | Node::End | Node::Empty) {
            return self.error(at, "an anchor or empty group cannot be repeated");
        }
        // A lazy marker means nothing when the only answer is yes or no.
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if let Some(c @ ('*' | '+' | '?' | '{')) = self.peek() {
            return self.error(
                self.pos,
                format!("`{c}` repeats a repetition; put the first in a group ( )"),
            );
        }
        Ok(Node::Repeat {
            node: Box::new(atom),
            min,
            max,
        })
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start || self.pos - start > 4 {
            return None;
        }
        self.chars[start..self.pos]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn counts(&mut self, at: usize) -> Result<(u32, Option<u32>), RegexError> {
        let bad = "expected a count like `{3}`, `{2,}` or `{2,5}`";
        let Some(min) = self.number() else {
            return self.error(at, bad);
        };
        let max = match self.peek() {
            Some('}') => Some(min),
            Some(',') => {
                self.pos += 1;
                if self.peek() == Some('}') {
                    None
                } else {
                    match self.number() {
                        Some(n) => Some(n),
                        None => return self.error(at, bad),
                    }
                }
            }
            _ => return self.error(at, bad),
        };
        if self.peek() != Some('}') {
            return self.error(at, bad);
        }
        self.pos += 1;
        if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return self.error(at, format!("counts above {MAX_REPEAT} are not supported"));
        }
        if max.is_some_and(|m| m < min) {
            return self.error(at, "in `{m,n}`, n must not be less than m");
        }
        Ok((min, max))
    }
}

enum Escaped {
    Char(char),
    Class(Class),
}

/// Instructions `node` compiles to, saturating so that huge nestings are caught, not overflowed.
fn size(node: &Node) -> usize {
    match node {
        Node::Empty => 0,
        Node::Char(_) | Node::Any | Node::Class(_) | Node::Start | Node::End => 1,
        Node::Concat(items) => items.iter().map(size).fold(0, usize::saturating_add),
        Node::Alt(items) => items
            .iter()
            .map(|n| size(n).saturating_add(2))
            .fold(0, usize::saturating_add),
        Node::Repeat { node, min, max } => {
            let one = size(node).saturating_add(2);
            let copies = match max {
                Some(m) => *m as usize,
                None => *min as usize + 1,
            };
            one.saturating_mul(copies.max(1))
        }
    }
}

struct Compiler {
    program: Vec<Inst>,
    classes: Vec<Class>,
}

impl Compiler {
    fn emit(&mut self, inst: Inst) -> usize {
        self.program.push(inst);
        self.program.len() - 1
    }

    fn patch_split(&mut self, at: usize, a: usize, b: usize) {
        self.program[at] = Inst::Split(a, b);
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.emit(Inst::Char(*c));
            }
            Node::Any => {
                self.emit(Inst::Any);
            }
            Node::Class(class) => {
                self.classes.push(class.clone());
                let index = self.classes.len() - 1;
                self.emit(Inst::Class(index));
            }
            Node::Start => {
                self.emit(Inst::Start);
            }
            Node::End => {
                self.emit(Inst::End);
            }
            Node::Concat(items) => items.iter().for_each(|n| self.node(n)),
            Node::Alt(branches) => {
                // split L1, next; L1: a; jmp end; next: split L2, ...; last branch; end:
                let mut jumps = Vec::new();
                for (i, branch) in branches.iter().enumerate() {
                    if i + 1 < branches.len() {
                        let split = self.emit(Inst::Split(0, 0));
                        self.node(branch);
                        jumps.push(self.emit(Inst::Jmp(0)));
                        let next = self.program.len();
                        self.patch_split(split, split + 1, next);
                    } else {
                        self.node(branch);
                    }
                }
                let end = self.program.len();
                for j in jumps {
                    self.program[j] = Inst::Jmp(end);
                }
            }
            Node::Repeat { node, min, max } => {
                for _ in 0..*min {
                    self.node(node);
                }
                match max {
                    None => {
                        // L: split body, end; body; jmp L; end:
                        let split = self.emit(Inst::Split(0, 0));
                        self.node(node);
                        self.emit(Inst::Jmp(split));
                        let end = self.program.len();
                        self.patch_split(split, split + 1, end);
                    }
                    Some(max) => {
                        for _ in *min..*max {
                            let split = self.emit(Inst::Split(0, 0));
                            self.node(node);
                            let end = self.program.len();
                            self.patch_split(split, split + 1, end);
                        }
                    }
                }
            }
        }
    }
}

/// Program counters of live threads, each at most once (Briggs–Torczon sparse set).
struct Threads {
    dense: Vec<usize>,
    sparse: Vec<usize>,
}

impl Threads {
    fn new(n: usize) -> Self {
        Threads {
            dense: Vec::with_capacity(n),
            sparse: vec![0; n],
        }
    }

    fn contains(&self, pc: usize) -> bool {
        let i = self.sparse[pc];
        i < self.dense.len() && self.dense[i] == pc
    }

    fn insert(&mut self, pc: usize) -> bool {
        if self.contains(pc) {
            return false;
        }
        self.sparse[pc] = self.dense.len();
        self.dense.push(pc);
        true
    }

    fn clear(&mut self) {
        self.dense.clear();
    }
}

fn fold(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

impl Regex {
    /// Compiles a case-sensitive pattern.
    pub fn new(pattern: &str) -> Result<Regex, RegexError> {
        Regex::with_case(pattern, false)
    }

    /// Compiles a pattern; with `ignore_case` letters match either case.
    pub fn with_case(pattern: &str, ignore_case: bool) -> Result<Regex, RegexError> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > MAX_PATTERN_CHARS {
            return Err(RegexError {
                position: MAX_PATTERN_CHARS,
                message: format!(
                    "pattern is {} characters long; at most {MAX_PATTERN_CHARS} are accepted",
                    chars.len()
                ),
            });
        }
        let mut parser = Parser { chars, pos: 0 };
        let tree = parser.alternation(0)?;
        if parser.pos < parser.chars.len() {
            // Only a `)` stops the top-level alternation early.
            return parser.error(parser.pos, "this `)` has no `(`");
        }
        if size(&tree) >= MAX_PROGRAM {
            return parser.error(
                0,
                format!(
                    "pattern expands to more than {MAX_PROGRAM} steps (nested counted repetitions multiply); simplify it"
                ),
            );
        }
        let mut compiler = Compiler {
            program: Vec::new(),
            classes: Vec::new(),
        };
        compiler.node(&tree);
        compiler.emit(Inst::Match);
        Ok(Regex {
            pattern: pattern.to_string(),
            program: compiler.program,
            classes: compiler.classes,
            ignore_case,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern matches the whole of `text` (as if wrapped in `^(...)$`).
    pub fn is_full_match(&self, text: &str) -> bool {
        self.run(text, true)
    }

    /// True when the pattern matches somewhere in `text`; `^` and `$` anchor as usual.
    pub fn is_match(&self, text: &str) -> bool {
        self.run(text, false)
    }

    fn char_matches(&self, inst: Inst, c: char) -> bool {
        match inst {
            Inst::Char(p) => p == c || (self.ignore_case && fold(p) == fold(c)),
            Inst::Any => c != '\n',
            Inst::Class(i) => {
                let class = &self.classes[i];
                class.contains(c)
                    || (self.ignore_case
                        && (class.contains(fold(c))
                            || c.to_uppercase().next().is_some_and(|u| class.contains(u))))
            }
            _ => false,
        }
    }

    /// Adds `pc` and everything reachable from it without consuming input.
    fn add(
        &self,
        threads: &mut Threads,
        stack: &mut Vec<usize>,
        pc: usize,
        at_start: bool,
        at_end: bool,
    ) {
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            if !threads.insert(pc) {
                continue;
            }
            match self.program[pc] {
                Inst::Jmp(to) => stack.push(to),
                Inst::Split(a, b) => {
                    stack.push(b);
                    stack.push(a);
                }
                Inst::Start if at_start => stack.push(pc + 1),
                Inst::End if at_end => stack.push(pc + 1),
                _ => {}
            }
        }
    }

    fn run(&self, text: &str, full: bool) -> bool {
        let n = self.program.len();
        let mut current = Threads::new(n);
        let mut next = Threads::new(n);
        let mut stack = Vec::new();
        let matched = |threads: &Threads| {
            threads
                .dense
                .iter()
                .any(|&pc| matches!(self.program[pc], Inst::Match))
        };
        self.add(&mut current, &mut stack, 0, true, text.is_empty());
        for (i, c) in text.char_indices() {
            if !full && matched(&current) {
                return true;
            }
            if current.dense.is_empty() && full {
                return false;
            }
            let after = i + c.len_utf8();
            let at_end = after == text.len();
            next.clear();
            for k in 0..current.dense.len() {
                let pc = current.dense[k];
                let inst = self.program[pc];
                if self.char_matches(inst, c) {
                    self.add(&mut next, &mut stack, pc + 1, false, at_end);
                }
            }
            if !full {
                // Unanchored search: a new attempt starts at every position.
                self.add(&mut next, &mut stack, 0, false, at_end);
            }
            std::mem::swap(&mut current, &mut next);
        }
        matched(&current)
    }
}

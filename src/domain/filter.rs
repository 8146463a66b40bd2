//! Payload filters: an endpoint may take only the messages for which a Common Expression
//! Language expression over the message is true, e.g.
//! `payload.amount >= 1000 && payload.currency in ["EUR", "USD"]`.
//!
//! The expression sees `eventType` (a string), `payload` (the message's JSON), `channels`
//! and `tags` (lists of strings, empty when the message has none). It is compiled once per
//! distinct text ([`compiled`]) and its cost is bounded before it is taken: at most
//! [`MAX_LEN`] characters nested at most [`MAX_DEPTH`] deep, no comprehension (`all`,
//! `exists`, `map`, `filter`, …) inside another (in its body or in the list it walks), a
//! comprehension's body sees only its own variables, and `matches()` takes only a literal
//! pattern, outside comprehensions; so one evaluation costs at most about the expression's
//! size times the message's. Errors say what went wrong without quoting the message's values.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Program, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

/// The longest filter taken, in characters.
pub const MAX_LEN: usize = 1000;

/// How deep a filter's expressions may nest.
pub const MAX_DEPTH: usize = 32;

/// The names a filter may use at its top level.
pub const VARIABLES: [&str; 4] = ["eventType", "payload", "channels", "tags"];

/// A filter that compiled and keeps the cost rules.
pub struct Filter {
    program: Program,
    /// Whether it reads `payload` (else the message's JSON need not be converted).
    reads_payload: bool,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").finish_non_exhaustive()
    }
}

/// Why a filter was refused: what, and where (1-based line and column, when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl FilterError {
    fn at_start(message: impl Into<String>) -> FilterError {
        FilterError {
            line: 1,
            column: 1,
            message: message.into(),
        }
    }
}

/// Compiles `source`, or says where and why it cannot be a filter.
pub fn compile(source: &str) -> Result<Filter, FilterError> {
    if source.chars().count() > MAX_LEN {
        return Err(FilterError::at_start(format!(
            "a filter is at most {MAX_LEN} characters"
        )));
    }
    if source.trim().is_empty() {
        return Err(FilterError::at_start("the filter is empty"));
    }
    check_nesting(source)?;
    // The parser is third-party code fed with user text: a panic in it is a refusal, not a
    // crash.
    let parsed = std::panic::catch_unwind(|| Program::compile(source))
        .map_err(|_| FilterError::at_start("the filter cannot be parsed"))?;
    let program = parsed.map_err(|errors| {
        let first = errors.errors.first();
        FilterError {
            line: first.map_or(1, |e| e.pos.0.clamp(1, u32::MAX as isize) as u32),
            column: first.map_or(1, |e| e.pos.1.clamp(1, u32::MAX as isize) as u32),
            message: first.map_or_else(|| "the filter cannot be parsed".into(), |e| e.msg.clone()),
        }
    })?;
    let mut check = Check {
        source,
        program: &program,
        loop_vars: Vec::new(),
        in_comprehension: false,
        reads_payload: false,
    };
    check.expr(program.expression(), 0)?;
    let reads_payload = check.reads_payload;
    Ok(Filter {
        program,
        reads_payload,
    })
}

/// Brackets nested deeper than [`MAX_DEPTH`] are refused before parsing: the parser
/// recurses on each, and a stack overflow cannot be caught.
fn check_nesting(source: &str) -> Result<(), FilterError> {
    let (mut depth, mut line, mut column) = (0usize, 1u32, 0u32);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        column += 1;
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(FilterError {
                        line,
                        column,
                        message: format!("the filter nests more than {MAX_DEPTH} deep"),
                    });
                }
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
    }
    Ok(())
}

/// Walks a parsed filter and refuses what could make one evaluation cost more than its size
/// times the message's.
struct Check<'p> {
    source: &'p str,
    program: &'p Program,
    /// The variables of the comprehensions being walked (innermost last): accumulator and
    /// iteration variables.
    loop_vars: Vec<Vec<&'p str>>,
    /// Within a comprehension (its body or the list it walks).
    in_comprehension: bool,
    reads_payload: bool,
}

impl<'p> Check<'p> {
    fn refuse(&self, e: &IdedExpr, message: String) -> FilterError {
        // Where the expression starts, as a byte offset into the source.
        let start = self
            .program
            .source_info()
            .offset_for(e.id)
            .map_or(0, |o| o.0) as usize;
        let before: Vec<char> = self
            .source
            .char_indices()
            .take_while(|(at, _)| *at < start)
            .map(|(_, c)| c)
            .collect();
        let line = before.iter().filter(|c| **c == '\n').count() + 1;
        let column = before.iter().rev().take_while(|c| **c != '\n').count() + 1;
        FilterError {
            line: line as u32,
            column: column as u32,
            message,
        }
    }

    fn expr(&mut self, e: &'p IdedExpr, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            return Err(self.refuse(e, format!("the filter nests more than {MAX_DEPTH} deep")));
        }
        let depth = depth + 1;
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(s) => self.expr(&s.operand, depth),
            Expr::Call(call) => {
                if call.func_name == "matches" {
                    self.check_matches(e, call)?;
                }
                if let Some(target) = &call.target {
                    self.expr(target, depth)?;
                }
                call.args.iter().try_for_each(|a| self.expr(a, depth))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|a| self.expr(a, depth)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(m) => {
                    self.expr(&m.key, depth)?;
                    self.expr(&m.value, depth)
                }
                EntryExpr::StructField(_) => Err(self.refuse(e, "a filter has no types".into())),
            }),
            Expr::Struct(s) => Err(self.refuse(
                e,
                format!("`{}`: a filter has no message types", s.type_name),
            )),
            Expr::Comprehension(c) => {
                if self.in_comprehension {
                    return Err(self.refuse(
                        e,
                        "all(), exists(), map() and filter() may not be used inside one another, \
                         nor on what another one made"
                            .into(),
                    ));
                }
                self.in_comprehension = true;
                let range = self
                    .expr(&c.iter_range, depth)
                    .and_then(|()| self.expr(&c.accu_init, depth));
                let mut vars = vec![c.iter_var.as_str(), c.accu_var.as_str()];
                vars.extend(c.iter_var2.as_deref());
                self.loop_vars.push(vars);
                let body = range.and_then(|()| {
                    [&c.loop_cond, &c.loop_step, &c.result]
                        .into_iter()
                        .try_for_each(|b| self.expr(b, depth))
                });
                self.loop_vars.pop();
                self.in_comprehension = false;
                body
            }
        }
    }

    /// `matches()` compiles its pattern at each evaluation: only a literal one, outside
    /// comprehensions.
    fn check_matches(
        &self,
        e: &IdedExpr,
        call: &cel::common::ast::CallExpr,
    ) -> Result<(), FilterError> {
        if !self.loop_vars.is_empty() {
            return Err(self.refuse(
                e,
                "matches() may not be used inside all(), exists(), map() or filter()".into(),
            ));
        }
        let pattern = if call.target.is_some() {
            call.args.first()
        } else {
            call.args.get(1)
        };
        let literal = pattern.is_some_and(|p| {
            matches!(
                p.expr,
                Expr::Literal(cel::common::ast::LiteralValue::String(_))
            )
        });
        if !literal {
            return Err(self.refuse(
                e,
                "matches() takes its pattern as a string written in the filter".into(),
            ));
        }
        Ok(())
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Result<(), FilterError> {
        if let Some(vars) = self.loop_vars.last() {
            if vars.contains(&name) {
                return Ok(());
            }
            return Err(self.refuse(
                e,
                format!(
                    "`{name}`: inside all(), exists(), map() or filter() only the loop's own \
                     variable may be used"
                ),
            ));
        }
        if !VARIABLES.contains(&name) {
            return Err(self.refuse(
                e,
                format!(
                    "unknown name `{name}`: a filter may use {}",
                    VARIABLES.join(", ")
                ),
            ));
        }
        self.reads_payload |= name == "payload";
        Ok(())
    }
}

/// What a filter is evaluated against: one message, its JSON converted once however many
/// endpoints' filters read it.
pub struct Input<'m> {
    pub event_type: &'m str,
    /// The message's JSON text.
    pub payload: &'m str,
    pub channels: Option<&'m [String]>,
    pub tags: Option<&'m [String]>,
    converted: OnceLock<Result<Value, String>>,
}

impl<'m> Input<'m> {
    pub fn new(
        event_type: &'m str,
        payload: &'m str,
        channels: Option<&'m [String]>,
        tags: Option<&'m [String]>,
    ) -> Input<'m> {
        Input {
            event_type,
            payload,
            channels,
            tags,
            converted: OnceLock::new(),
        }
    }

    fn payload_value(&self) -> Result<&Value, String> {
        self.converted
            .get_or_init(|| {
                serde_json::from_str::<serde_json::Value>(self.payload)
                    .map(|v| json_value(&v))
                    .map_err(|e| format!("the payload is not JSON: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn strings(v: Option<&[String]>) -> Value {
    Value::List(Arc::new(
        v.unwrap_or_default()
            .iter()
            .map(|s| Value::String(Arc::new(s.clone())))
            .collect(),
    ))
}

/// A JSON value as CEL sees it: integers as `int` (or `uint` above its range), other numbers
/// as `double`.
fn json_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::UInt))
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        J::String(s) => Value::String(Arc::new(s.clone())),
        J::Array(a) => Value::List(Arc::new(a.iter().map(json_value).collect())),
        J::Object(o) => {
            let map: HashMap<String, Value> =
                o.iter().map(|(k, v)| (k.clone(), json_value(v))).collect();
            Value::from(map)
        }
    }
}

/// The standard functions, built once.
static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

impl Filter {
    /// Whether the message passes: `Err` says why the filter could not tell (a field it
    /// reads is missing, a type does not fit, it is not true or false).
    pub fn matches(&self, input: &Input<'_>) -> Result<bool, String> {
        let mut ctx = Context::with_env(ENV.clone());
        ctx.add_variable_from_value("eventType", input.event_type);
        ctx.add_variable_from_value("channels", strings(input.channels));
        ctx.add_variable_from_value("tags", strings(input.tags));
        if self.reads_payload {
            ctx.add_variable_from_value("payload", input.payload_value()?.clone());
        }
        // Evaluation is third-party code: a panic in it is an error for this message only.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.program.execute(&ctx)))
                .map_err(|_| "the filter failed unexpectedly".to_owned())?;
        match outcome {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "the filter gave {} instead of true or false",
                other.type_of()
            )),
            Err(e) => Err(describe(&e)),
        }
    }
}

/// What went wrong in an evaluation, without the message's values (the error is stored and
/// shown, and must not keep what a content deletion removes): types, operators, functions,
/// and names the filter itself wrote.
fn describe(e: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    let why = match e {
        E::NoSuchKey(k) => format!("no field or key `{k}`"),
        E::UndeclaredReference(n) => format!("unknown name `{n}`"),
        E::NoSuchOverload(o) => o.to_string(),
        E::UnexpectedType { got, want } => format!("got a {got} where a {want} was wanted"),
        E::ValuesNotComparable(a, b) => {
            format!("a {} cannot be compared to a {}", a.type_of(), b.type_of())
        }
        E::UnsupportedBinaryOperator(op, a, b) => format!(
            "`{op}` does not apply to a {} and a {}",
            a.type_of(),
            b.type_of()
        ),
        E::DivisionByZero(_) | E::RemainderByZero(_) => "division by zero".to_owned(),
        E::Overflow(op, _, _) => format!("`{op}` overflowed"),
        E::IndexOutOfBounds(_) => "a list index is out of range".to_owned(),
        E::UnsupportedKeyType(v) => format!("a {} cannot be used as a key", v.type_of()),
        E::FunctionError { function, .. } => format!("{function}() failed"),
        E::InvalidArgumentCount { expected, actual } => {
            format!("{actual} arguments where {expected} were wanted")
        }
        _ => "the filter could not be evaluated".to_owned(),
    };
    // A field or name of the filter's own, at most.
    why.chars().take(200).collect()
}

/// Compiled filters by their text, shared by every ingest: each distinct filter is compiled
/// once, whichever endpoint (or node) it came from. Bounded: past `CACHE_MAX` texts it
/// starts over.
static CACHE: LazyLock<RwLock<HashMap<Box<str>, Compiled>>> = LazyLock::new(Default::default);
const CACHE_MAX: usize = 4096;

/// A filter's text compiled, or why it does not compile.
pub type Compiled = Arc<Result<Filter, FilterError>>;

/// `source` compiled, from the cache when it was compiled before.
pub fn compiled(source: &str) -> Compiled {
    if let Some(f) = CACHE.read().unwrap_or_else(|e| e.into_inner()).get(source) {
        return f.clone();
    }
    let f = Arc::new(compile(source));
    let mut cache = CACHE.write().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHE_MAX {
        cache.clear();
    }
    cache.insert(source.into(), f.clone());
    f
}

/// What a filter does with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It takes the message: it is sent.
    Takes,
    /// It does not: the message is stored as filtered.
    Leaves,
    /// It cannot tell (why): filtered too, with why recorded.
    CannotTell(String),
    /// The filter itself does not compile (where and why).
    DoesNotCompile(String),
}

/// What the endpoint filter `source` does with a message.
pub fn verdict(source: &str, input: &Input<'_>) -> Verdict {
    match &*compiled(source) {
        Ok(f) => match f.matches(input) {
            Ok(true) => Verdict::Takes,
            Ok(false) => Verdict::Leaves,
            Err(why) => Verdict::CannotTell(why),
        },
        Err(e) => Verdict::DoesNotCompile(e.to_string()),
    }
}

/// Whether a message passes the endpoint filter `source`: `Err` with what went wrong (a
/// stored filter that no longer compiles, or one that could not tell for this message).
pub fn passes(source: &str, input: &Input<'_>) -> Result<bool, String> {
    match verdict(source, input) {
        Verdict::Takes => Ok(true),
        Verdict::Leaves => Ok(false),
        Verdict::CannotTell(why) => Err(why),
        Verdict::DoesNotCompile(why) => Err(format!("the filter does not compile: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(filter: &str, payload: &str) -> Result<bool, String> {
        let tags = vec!["vip".to_owned()];
        let input = Input::new("invoice.paid", payload, None, Some(&tags));
        compile(filter).map_err(|e| e.to_string())?.matches(&input)
    }

    #[test]
    fn filters_read_the_payload_event_type_channels_and_tags() {
        let f = r#"payload.amount >= 1000 && payload.currency in ["EUR", "USD"]"#;
        assert_eq!(eval(f, r#"{"amount": 1500, "currency": "EUR"}"#), Ok(true));
        assert_eq!(
            eval(f, r#"{"amount": 999.5, "currency": "EUR"}"#),
            Ok(false)
        );
        assert_eq!(eval(f, r#"{"amount": 2000, "currency": "GBP"}"#), Ok(false));
        assert_eq!(
            eval(f, r#"{"amount": 1000.0, "currency": "USD"}"#),
            Ok(true)
        );
        assert_eq!(eval(r#"eventType.startsWith("invoice.")"#, "{}"), Ok(true));
        assert_eq!(
            eval(r#""vip" in tags && size(channels) == 0"#, "{}"),
            Ok(true)
        );
        assert_eq!(
            eval(
                r#"payload.items.exists(i, i.sku == "A-1")"#,
                r#"{"items": [{"sku": "B"}, {"sku": "A-1"}]}"#
            ),
            Ok(true)
        );
        assert_eq!(
            eval(
                "has(payload.customer) && payload.customer.id == 7",
                r#"{"x": 1}"#
            ),
            Ok(false)
        );
    }

    #[test]
    fn a_missing_field_or_a_result_that_is_not_a_bool_is_an_error_for_that_message() {
        let missing = eval("payload.amount > 10", r#"{"total": 5}"#).unwrap_err();
        assert!(missing.contains("amount"), "{missing}");
        // Errors name types, never the message's values.
        let secret = r#"{"customer": {"name": "Ada Lovelace"}, "price": "12 EUR"}"#;
        for f in [
            "payload.customer > 1",
            "payload.price > 100",
            "payload.price + 1 == 2",
            "int(payload.price) == 12",
        ] {
            let why = eval(f, secret).unwrap_err();
            assert!(
                !why.contains("Ada") && !why.contains("12 EUR"),
                "{f}: {why}"
            );
        }
        let not_bool = eval("payload.amount", r#"{"amount": 5}"#).unwrap_err();
        assert!(not_bool.contains("instead of true or false"), "{not_bool}");
        assert!(eval("payload.a > 1", "not json").is_err());
    }

    #[test]
    fn parse_errors_say_where() {
        let e = compile("payload.amount >= ").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.column > 1, "{e}");
        let e = compile("payload.a == 1 &&\n  payload.b = 2").unwrap_err();
        assert_eq!((e.line, e.column), (2, 13), "{e}");
        let e = compile(r#""é" == payload.a && amount"#).unwrap_err();
        assert_eq!((e.line, e.column), (1, 21), "{e}");
        let e = compile("payload.a == 1 &&\n  amount > 3").unwrap_err();
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        assert!(e.message.contains("amount"), "{e}");
    }

    #[test]
    fn costly_or_unbounded_filters_are_refused() {
        let outer = compile("payload.a.all(x, x == payload.b)").unwrap_err();
        assert!(outer.message.contains("`payload`"), "{outer}");
        assert_eq!((outer.line, outer.column), (1, 23), "{outer}");
        let nested = compile("payload.a.all(x, x.exists(y, y == 1))").unwrap_err();
        assert!(nested.message.contains("inside one another"), "{nested}");
        let regex = compile(r#"payload.a.exists(x, x.matches("a+"))"#).unwrap_err();
        assert!(regex.message.contains("matches()"), "{regex}");
        assert!(compile(&"1 == 1 && ".repeat(200)).is_err());
        assert!(compile("   ").is_err());
        assert!(compile("Foo{a: 1} == 2").is_err());
        // One comprehension may not feed another: their outputs could grow without bound.
        let chained = compile(&format!(
            r#"["ab"]{}.size() > 0"#,
            ".map(s, s + s)".repeat(40)
        ));
        assert!(chained
            .unwrap_err()
            .message
            .contains("what another one made"));
        assert!(compile("payload.a.map(x, x * 2).exists(y, y > 4)").is_err());
        // Patterns are literals.
        compile(r#"payload.name.matches("^a+$")"#).unwrap();
        compile(r#"matches(payload.name, "^a+$")"#).unwrap();
        let from_payload = compile("payload.name.matches(payload.re)").unwrap_err();
        assert!(from_payload
            .message
            .contains("string written in the filter"));
        // Deep nesting is refused before it is evaluated.
        let deep = format!("payload{} == 1", ".a".repeat(60));
        assert!(
            compile(&deep).unwrap_err().message.contains("deep"),
            "{deep}"
        );
        let long_sum = format!("1{} == 2", " + 1".repeat(100));
        assert!(compile(&long_sum).is_err());
        compile(&format!("1{} == 11", " + 1".repeat(10))).unwrap();
    }

    #[test]
    fn the_deepest_filters_that_fit_in_the_length_are_refused_within_half_a_thread_stack() {
        // Threads have 2 MiB of stack (tokio's workers, the SQLite writer): compiling the
        // deepest filters 1000 characters allow must fit in half of it, even unoptimised.
        let deepest = [
            format!("payload{} == 1", ".a".repeat(495)),
            format!("1{} == 2", "+1".repeat(497)),
            format!("{}1{}", "(".repeat(499), ")".repeat(499)),
            format!("{}true", "!".repeat(999)),
            format!("{}1", "-".repeat(999)),
            format!("[{}]", "[".repeat(498) + &"]".repeat(498)),
        ];
        let run = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                deepest
                    .iter()
                    .map(|f| match compile(f) {
                        // What compiles (the parser folds a run of negations) also evaluates.
                        Ok(f) => f.matches(&Input::new("a", "{}", None, None)).is_ok(),
                        Err(_) => false,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap();
        assert_eq!(
            run.join().unwrap(),
            [false, false, false, false, false, false]
        );
    }

    #[test]
    fn compiled_filters_are_shared() {
        let a = compiled("payload.n == 1");
        let b = compiled("payload.n == 1");
        assert!(Arc::ptr_eq(&a, &b));
    }
}

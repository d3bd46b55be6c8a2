//! Mocked service integrations in the Step Functions Local mock-config format (`SFN_MOCK_CONFIG`).
//!
//! A mock config file lets a test run a state machine without calling any service: each Task
//! state named in a *test case* returns (or throws) the canned responses of a *mocked response*
//! instead of invoking its resource. The format is Step Functions Local's:
//!
//! ```json
//! {
//!   "StateMachines": {
//!     "Pipeline": { "TestCases": { "HappyPath": { "Launch": "LaunchOk" } } }
//!   },
//!   "MockedResponses": {
//!     "LaunchOk": {
//!       "0":   { "Throw":  { "Error": "Sluice.SpotInterrupted", "Cause": "reclaimed" } },
//!       "1-2": { "Return": { "ExitCode": 0 } }
//!     }
//!   }
//! }
//! ```
//!
//! Semantics, as AWS documents them for Step Functions Local:
//! - keys of a mocked response are 0-based invocation numbers (`"3"`) or inclusive ranges
//!   (`"0-2"`); each value holds exactly one of `Return` (the task result) or `Throw` (an object
//!   with string `Error` and `Cause`);
//! - invocations are counted per state within one execution, so retries and every Map iteration
//!   advance the same counter (AWS recommends `MaxConcurrency: 1` for a predictable order);
//! - states inside Parallel branches and Map processors are referenced by their plain name
//!   (state names are unique across a whole state machine);
//! - "you must specify a mocked response for every invocation ... If you do not specify a mocked
//!   response, the state machine execution will fail": an invocation past the defined keys does
//!   *not* repeat the last response; [`MockTestCase::lookup`] reports it as
//!   [`MockLookup::Exhausted`], and [`MockTestCase::response`] turns it into an uncatchable
//!   `States.Runtime` error.
//! - a state the test case does not name is not mocked and calls its real resource.
//!
//! [`MockConfig::from_json`] (and `Deserialize`) validate the whole file up front and name the
//! JSON pointer of any problem, so a typo fails before the execution starts.

use std::collections::HashMap;
use std::collections::HashMap as Map;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::Value;

use crate::error::names;

/// What a mocked invocation produces.
#[derive(Debug, Clone, PartialEq)]
pub enum MockedResult {
    /// The task succeeded with this result (before ResultSelector/ResultPath).
    Return(Value),
    /// The task failed with this error and cause (subject to Retry/Catch).
    Throw { error: String, cause: String },
}

/// The answer for one invocation of a state under a test case.
#[derive(Debug, Clone, PartialEq)]
pub enum MockLookup {
    /// The test case does not mock this state: call the real resource.
    NotMocked,
    /// The canned response for this invocation.
    Response(MockedResult),
    /// The state is mocked but its mocked response defines nothing for this invocation; Step
    /// Functions Local fails the execution.
    Exhausted {
        mocked_response: String,
        invocation: u32,
    },
}

/// A problem with the mock config or a lookup in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockConfigError {
    #[error("invalid mock config JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The file is well-formed JSON but breaks a rule; `location` is a JSON pointer.
    #[error("{location}: {message}")]
    Invalid { location: String, message: String },
    #[error("state machine '{0}' has no entry in the mock config's StateMachines")]
    UnknownStateMachine(String),
    #[error("state machine '{state_machine}' has no test case '{test_case}' in the mock config")]
    UnknownTestCase {
        state_machine: String,
        test_case: String,
    },
}

fn invalid(location: impl Into<String>, message: impl Into<String>) -> MockConfigError {
    MockConfigError::Invalid {
        location: location.into(),
        message: message.into(),
    }
}

/// One contiguous run of invocations sharing a response.
#[derive(Debug, Clone, PartialEq)]
struct Span {
    first: u32,
    last: u32,
    result: MockedResult,
}

/// A validated mock configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct MockConfig {
    /// state machine name → test case name → state name → mocked response name.
    state_machines: Map<String, Map<String, Map<String, String>>>,
    /// mocked response name → spans sorted by first invocation.
    responses: Map<String, Vec<Span>>,
}

impl TryFrom<Value> for MockConfig {
    type Error = MockConfigError;
    fn try_from(v: Value) -> Result<Self, Self::Error> {
        Self::from_value(&v)
    }
}

impl MockConfig {
    /// Parse and validate a mock config file's text.
    pub fn from_json(s: &str) -> Result<MockConfig, MockConfigError> {
        let v: Value = serde_json::from_str(s).map_err(|e| MockConfigError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Self::from_value(&v)
    }

    /// Validate an already-parsed mock config.
    pub fn from_value(v: &Value) -> Result<MockConfig, MockConfigError> {
        let root = v
            .as_object()
            .ok_or_else(|| invalid("", "the mock config must be a JSON object"))?;
        for key in root.keys() {
            if key != "StateMachines" && key != "MockedResponses" {
                return Err(invalid(
                    pointer(&[key]),
                    format!(
                        "unknown top-level field '{key}' (expected StateMachines and \
                         MockedResponses)"
                    ),
                ));
            }
        }
        let responses = match root.get("MockedResponses") {
            None => Map::new(),
            Some(Value::Object(m)) => {
                let mut out = Map::with_capacity(m.len());
                for (name, spec) in m {
                    out.insert(name.clone(), parse_response(name, spec)?);
                }
                out
            }
            Some(_) => return Err(invalid("/MockedResponses", "must be an object")),
        };
        let state_machines = match root.get("StateMachines") {
            None => Map::new(),
            Some(Value::Object(m)) => {
                let mut out = Map::with_capacity(m.len());
                for (sm, spec) in m {
                    out.insert(sm.clone(), parse_state_machine(sm, spec, &responses)?);
                }
                out
            }
            Some(_) => return Err(invalid("/StateMachines", "must be an object")),
        };
        Ok(MockConfig {
            state_machines,
            responses,
        })
    }

    /// The mocks of one test case of one state machine.
    pub fn test_case(
        &self,
        state_machine: &str,
        test_case: &str,
    ) -> Result<MockTestCase<'_>, MockConfigError> {
        let cases = self
            .state_machines
            .get(state_machine)
            .ok_or_else(|| MockConfigError::UnknownStateMachine(state_machine.to_string()))?;
        let states = cases
            .get(test_case)
            .ok_or_else(|| MockConfigError::UnknownTestCase {
                state_machine: state_machine.to_string(),
                test_case: test_case.to_string(),
            })?;
        Ok(MockTestCase {
            config: self,
            states,
        })
    }

    /// Names of the state machines the config mocks.
    pub fn state_machines(&self) -> impl Iterator<Item = &str> {
        self.state_machines.keys().map(String::as_str)
    }
}

/// Step Functions Local selects a test case by appending `#TestCase` to the state machine ARN
/// passed to StartExecution; split such an ARN (or name) into its base and test case.
pub fn split_test_case(state_machine: &str) -> (&str, Option<&str>) {
    match state_machine.rsplit_once('#') {
        Some((base, case)) if !case.is_empty() => (base, Some(case)),
        _ => (state_machine, None),
    }
}

/// The mocks of one test case: state name → mocked response.
#[derive(Debug, Clone, Copy)]
pub struct MockTestCase<'a> {
    config: &'a MockConfig,
    states: &'a Map<String, String>,
}

impl MockTestCase<'_> {
    /// What invocation number `invocation_index` (0-based, counted per state) of `state_name`
    /// produces.
    pub fn lookup(&self, state_name: &str, invocation_index: u32) -> MockLookup {
        let Some(response_name) = self.states.get(state_name) else {
            return MockLookup::NotMocked;
        };
        // `from_value` guarantees every referenced response exists; an empty slice is the
        // defensive fallback and behaves like an exhausted response.
        let spans = self
            .config
            .responses
            .get(response_name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        match spans
            .iter()
            .find(|s| s.first <= invocation_index && invocation_index <= s.last)
        {
            Some(span) => MockLookup::Response(span.result.clone()),
            None => MockLookup::Exhausted {
                mocked_response: response_name.clone(),
                invocation: invocation_index,
            },
        }
    }

    /// The mocked result of an invocation; `None` when the state is not mocked. An invocation
    /// the mocked response does not cover yields `States.Runtime` (Step Functions Local fails
    /// the execution, and `States.ALL` does not catch `States.Runtime`).
    pub fn response(&self, state_name: &str, invocation_index: u32) -> Option<MockedResult> {
        match self.lookup(state_name, invocation_index) {
            MockLookup::NotMocked => None,
            MockLookup::Response(r) => Some(r),
            MockLookup::Exhausted {
                mocked_response,
                invocation,
            } => Some(MockedResult::Throw {
                error: names::RUNTIME.to_string(),
                cause: format!(
                    "The mocked response '{mocked_response}' for state '{state_name}' defines \
                     no response for invocation {invocation}"
                ),
            }),
        }
    }

    /// Whether the test case mocks `state_name`.
    pub fn is_mocked(&self, state_name: &str) -> bool {
        self.states.contains_key(state_name)
    }
}

/// Per-execution invocation counters, one per state name, safe to share between the concurrent
/// iterations of a Map or the branches of a Parallel.
#[derive(Debug, Default)]
pub struct InvocationCounter {
    counts: Mutex<HashMap<String, u32>>,
}

impl InvocationCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Return this invocation's 0-based index for `state_name` and advance the counter.
    pub fn next(&self, state_name: &str) -> u32 {
        // A poisoned lock only means another thread panicked mid-increment; the map is still a
        // valid set of counters, so keep counting rather than propagate the panic.
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = counts.entry(state_name.to_string()).or_insert(0);
        let current = *slot;
        *slot = slot.saturating_add(1);
        current
    }

    /// How many times `state_name` has been invoked so far.
    pub fn count(&self, state_name: &str) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(state_name)
            .copied()
            .unwrap_or(0)
    }
}

/// A test case plus its counters: what an executor needs for one mocked execution.
#[derive(Debug)]
pub struct MockSession<'a> {
    pub test_case: MockTestCase<'a>,
    pub counter: InvocationCounter,
}

impl<'a> MockSession<'a> {
    pub fn new(test_case: MockTestCase<'a>) -> Self {
        Self {
            test_case,
            counter: InvocationCounter::new(),
        }
    }

    /// Record an invocation of `state_name` and return its mocked result (`None`: not mocked,
    /// call the real resource). Unmocked states do not consume an invocation number.
    pub fn invoke(&self, state_name: &str) -> Option<MockedResult> {
        if !self.test_case.is_mocked(state_name) {
            return None;
        }
        let n = self.counter.next(state_name);
        self.test_case.response(state_name, n)
    }
}

/// A JSON pointer from raw keys (escaped per RFC 6901).
fn pointer(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Parse `"3"` or `"0-2"`; digits only, so `"+1"`, `" 1"` and `"2-1"` are rejected.
fn parse_key(key: &str) -> Result<(u32, u32), String> {
    let num = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{key}' is not an invocation number or an inclusive range like \"0-2\""
            ));
        }
        s.parse::<u32>()
            .map_err(|_| format!("'{key}' is out of range for an invocation number"))
    };
    match key.split_once('-') {
        None => num(key).map(|n| (n, n)),
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("the range '{key}' ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

fn parse_response(name: &str, spec: &Value) -> Result<Vec<Span>, MockConfigError> {
    let obj = spec.as_object().ok_or_else(|| {
        invalid(
            pointer(&["MockedResponses", name]),
            "a mocked response must be an object keyed by invocation numbers",
        )
    })?;
    if obj.is_empty() {
        return Err(invalid(
            pointer(&["MockedResponses", name]),
            "a mocked response needs at least one invocation",
        ));
    }
    let mut spans = Vec::with_capacity(obj.len());
    for (key, entry) in obj {
        let loc = pointer(&["MockedResponses", name, key]);
        let (first, last) = parse_key(key).map_err(|m| invalid(&loc, m))?;
        let e = entry
            .as_object()
            .ok_or_else(|| invalid(&loc, "must be an object with 'Return' or 'Throw'"))?;
        if let Some(k) = e.keys().find(|k| *k != "Return" && *k != "Throw") {
            return Err(invalid(
                pointer(&["MockedResponses", name, key, k]),
                format!("unknown field '{k}' (expected exactly one of Return or Throw)"),
            ));
        }
        let result = match (e.get("Return"), e.get("Throw")) {
            (Some(r), None) => MockedResult::Return(r.clone()),
            (None, Some(t)) => parse_throw(t, &pointer(&["MockedResponses", name, key, "Throw"]))?,
            _ => {
                return Err(invalid(
                    &loc,
                    "must contain exactly one of 'Return' or 'Throw'",
                ));
            }
        };
        spans.push(Span {
            first,
            last,
            result,
        });
    }
    spans.sort_by_key(|s| s.first);
    for pair in spans.windows(2) {
        if let [a, b] = pair
            && b.first <= a.last
        {
            return Err(invalid(
                pointer(&["MockedResponses", name]),
                format!(
                    "invocation {} is defined more than once (overlapping keys)",
                    b.first
                ),
            ));
        }
    }
    Ok(spans)
}

fn parse_throw(t: &Value, loc: &str) -> Result<MockedResult, MockConfigError> {
    let obj = t
        .as_object()
        .ok_or_else(|| invalid(loc, "'Throw' must be an object with 'Error' and 'Cause'"))?;
    if let Some(k) = obj.keys().find(|k| *k != "Error" && *k != "Cause") {
        return Err(invalid(
            format!("{loc}{}", pointer(&[k])),
            format!("unknown field '{k}' in Throw (expected Error and Cause)"),
        ));
    }
    let field = |k: &str| -> Result<String, MockConfigError> {
        match obj.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(
                format!("{loc}/{k}"),
                format!("'{k}' must be a string"),
            )),
            None => Err(invalid(
                format!("{loc}/{k}"),
                format!("'Throw' requires a string '{k}'"),
            )),
        }
    };
    Ok(MockedResult::Throw {
        error: field("Error")?,
        cause: field("Cause")?,
    })
}

fn parse_state_machine(
    sm: &str,
    spec: &Value,
    responses: &Map<String, Vec<Span>>,
) -> Result<Map<String, Map<String, String>>, MockConfigError> {
    let obj = spec.as_object().ok_or_else(|| {
        invalid(
            pointer(&["StateMachines", sm]),
            "must be an object with a 'TestCases' field",
        )
    })?;
    if let Some(k) = obj.keys().find(|k| *k != "TestCases") {
        return Err(invalid(
            pointer(&["StateMachines", sm, k]),
            format!("unknown field '{k}' (a state machine entry only has TestCases)"),
        ));
    }
    let cases = match obj.get("TestCases") {
        Some(Value::Object(c)) => c,
        Some(_) => {
            return Err(invalid(
                pointer(&["StateMachines", sm, "TestCases"]),
                "must be an object of test cases",
            ));
        }
        None => {
            return Err(invalid(
                pointer(&["StateMachines", sm, "TestCases"]),
                "missing required field 'TestCases'",
            ));
        }
    };
    let mut out = Map::with_capacity(cases.len());
    for (case, states) in cases {
        let states = states.as_object().ok_or_else(|| {
            invalid(
                pointer(&["StateMachines", sm, "TestCases", case]),
                "a test case must map state names to mocked response names",
            )
        })?;
        let mut mapped = Map::with_capacity(states.len());
        for (state, response) in states {
            let loc = pointer(&["StateMachines", sm, "TestCases", case, state]);
            let response = response
                .as_str()
                .ok_or_else(|| invalid(&loc, "must be the name of a mocked response"))?;
            if !responses.contains_key(response) {
                return Err(invalid(
                    &loc,
                    format!("mocked response '{response}' is not defined in MockedResponses"),
                ));
            }
            mapped.insert(state.clone(), response.to_string());
        }
        out.insert(case.clone(), mapped);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example from the AWS documentation, plus a Map-iteration state.
    const AWS_EXAMPLE: &str = r#"{
      "StateMachines": {
        "LambdaSQSIntegration": {
          "TestCases": {
            "HappyPath": {"LambdaState": "MockedLambdaSuccess", "SQSState": "MockedSQSSuccess"},
            "RetryPath": {"LambdaState": "MockedLambdaRetry", "SQSState": "MockedSQSSuccess"},
            "HybridPath": {"LambdaState": "MockedLambdaSuccess"}
          }
        }
      },
      "MockedResponses": {
        "MockedLambdaSuccess": {
          "0": {"Return": {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}}
        },
        "MockedSQSSuccess": {
          "0": {"Return": {"MD5OfMessageBody": "3bcb", "MessageId": "3bcb-8b51"}}
        },
        "MockedLambdaRetry": {
          "0": {"Throw": {"Error": "Lambda.ResourceNotReadyException", "Cause": "Lambda resource is not ready."}},
          "1-2": {"Throw": {"Error": "Lambda.TimeoutException", "Cause": "Lambda timed out."}},
          "3": {"Return": {"StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}}}
        }
      }
    }"#;

    fn config() -> MockConfig {
        MockConfig::from_json(AWS_EXAMPLE).expect("AWS example is valid")
    }

    fn throw(error: &str, cause: &str) -> MockedResult {
        MockedResult::Throw {
            error: error.into(),
            cause: cause.into(),
        }
    }

    #[test]
    fn aws_example_retry_path_sequence() {
        let cfg = config();
        let case = cfg
            .test_case("LambdaSQSIntegration", "RetryPath")
            .expect("case");
        assert_eq!(
            case.response("LambdaState", 0),
            Some(throw(
                "Lambda.ResourceNotReadyException",
                "Lambda resource is not ready."
            ))
        );
        for i in 1..=2 {
            assert_eq!(
                case.response("LambdaState", i),
                Some(throw("Lambda.TimeoutException", "Lambda timed out."))
            );
        }
        assert_eq!(
            case.response("LambdaState", 3),
            Some(MockedResult::Return(json!({
                "StatusCode": 200, "Payload": {"StatusCode": 200, "body": "Hello from Lambda!"}
            })))
        );
    }

    #[test]
    fn past_the_last_invocation_fails_instead_of_repeating() {
        let cfg = config();
        let case = cfg
            .test_case("LambdaSQSIntegration", "HappyPath")
            .expect("case");
        assert_eq!(
            case.lookup("SQSState", 1),
            MockLookup::Exhausted {
                mocked_response: "MockedSQSSuccess".into(),
                invocation: 1
            }
        );
        match case.response("SQSState", 1) {
            Some(MockedResult::Throw { error, cause }) => {
                assert_eq!(error, "States.Runtime");
                assert!(cause.contains("invocation 1"), "{cause}");
            }
            other => panic!("expected a States.Runtime throw, got {other:?}"),
        }
    }

    #[test]
    fn unmocked_states_and_unknown_cases() {
        let cfg = config();
        let hybrid = cfg
            .test_case("LambdaSQSIntegration", "HybridPath")
            .expect("case");
        assert_eq!(hybrid.response("SQSState", 0), None);
        assert_eq!(hybrid.lookup("SQSState", 0), MockLookup::NotMocked);
        assert!(hybrid.is_mocked("LambdaState"));
        assert_eq!(
            cfg.test_case("Other", "HappyPath").expect_err("unknown sm"),
            MockConfigError::UnknownStateMachine("Other".into())
        );
        let err = cfg
            .test_case("LambdaSQSIntegration", "Nope")
            .expect_err("unknown case");
        assert!(err.to_string().contains("no test case 'Nope'"), "{err}");
        assert_eq!(
            cfg.state_machines().collect::<Vec<_>>(),
            vec!["LambdaSQSIntegration"]
        );
    }

    #[test]
    fn deserialize_validates_too() {
        let cfg: MockConfig = serde_json::from_str(AWS_EXAMPLE).expect("deserialize");
        assert_eq!(cfg, config());
        let bad: Result<MockConfig, _> =
            serde_json::from_str(r#"{"MockedResponses": {"R": {"x": {"Return": 1}}}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn invalid_configs_name_the_location() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!([]), "", "JSON object"),
            (
                json!({"MockedResponse": {}}),
                "/MockedResponse",
                "unknown top-level field",
            ),
            (
                json!({"MockedResponses": {"R": {}}}),
                "/MockedResponses/R",
                "at least one",
            ),
            (
                json!({"MockedResponses": {"R": {"a": {"Return": 1}}}}),
                "/MockedResponses/R/a",
                "not an invocation number",
            ),
            (
                json!({"MockedResponses": {"R": {"-1": {"Return": 1}}}}),
                "/MockedResponses/R/-1",
                "not an invocation number",
            ),
            (
                json!({"MockedResponses": {"R": {"1-": {"Return": 1}}}}),
                "/MockedResponses/R/1-",
                "not an invocation number",
            ),
            (
                json!({"MockedResponses": {"R": {"3-1": {"Return": 1}}}}),
                "/MockedResponses/R/3-1",
                "ends before it starts",
            ),
            (
                json!({"MockedResponses": {"R": {"99999999999": {"Return": 1}}}}),
                "/MockedResponses/R/99999999999",
                "out of range",
            ),
            (
                json!({"MockedResponses": {"R": {"0-2": {"Return": 1}, "2": {"Return": 2}}}}),
                "/MockedResponses/R",
                "invocation 2 is defined more than once",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {}}}}),
                "/MockedResponses/R/0",
                "exactly one of",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {"Return": 1, "Throw": {"Error": "E", "Cause": "C"}}}}}),
                "/MockedResponses/R/0",
                "exactly one of",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {"Returns": 1}}}}),
                "/MockedResponses/R/0/Returns",
                "unknown field",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {"Throw": {"Error": "E"}}}}}),
                "/MockedResponses/R/0/Throw/Cause",
                "requires a string 'Cause'",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {"Throw": {"Error": 1, "Cause": "c"}}}}}),
                "/MockedResponses/R/0/Throw/Error",
                "must be a string",
            ),
            (
                json!({"MockedResponses": {"R": {"0": {"Throw": "boom"}}}}),
                "/MockedResponses/R/0/Throw",
                "must be an object",
            ),
            (
                json!({"StateMachines": {"S": {}}}),
                "/StateMachines/S/TestCases",
                "missing required field",
            ),
            (
                json!({"StateMachines": {"S": {"TestCases": {}, "X": 1}}}),
                "/StateMachines/S/X",
                "unknown field",
            ),
            (
                json!({"StateMachines": {"S": {"TestCases": {"T": {"A": "Missing"}}}}}),
                "/StateMachines/S/TestCases/T/A",
                "'Missing' is not defined",
            ),
            (
                json!({"StateMachines": {"S": {"TestCases": {"T": {"A": 1}}}}}),
                "/StateMachines/S/TestCases/T/A",
                "name of a mocked response",
            ),
            (
                json!({"StateMachines": {"S": {"TestCases": {"T": {"a/b": 1}}}}}),
                "/StateMachines/S/TestCases/T/a~1b",
                "name of a mocked response",
            ),
        ];
        for (v, location, fragment) in cases {
            match MockConfig::from_value(&v) {
                Err(MockConfigError::Invalid {
                    location: l,
                    message,
                }) => {
                    assert_eq!(l, location, "{v}: {message}");
                    assert!(message.contains(fragment), "{v}: {message}");
                }
                other => panic!("{v}: expected Invalid, got {other:?}"),
            }
        }
    }

    #[test]
    fn json_syntax_error_has_line() {
        match MockConfig::from_json("{\n  \"StateMachines\": ,\n}") {
            Err(MockConfigError::Json { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected Json error, got {other:?}"),
        }
    }

    #[test]
    fn counter_counts_per_state_across_threads() {
        let counter = InvocationCounter::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        counter.next("Launch");
                    }
                });
            }
        });
        assert_eq!(counter.count("Launch"), 100);
        assert_eq!(counter.next("Other"), 0);
        assert_eq!(counter.next("Other"), 1);
    }

    #[test]
    fn session_advances_only_mocked_states() {
        let cfg = config();
        let session = MockSession::new(
            cfg.test_case("LambdaSQSIntegration", "RetryPath")
                .expect("case"),
        );
        let errors: Vec<String> = (0..4)
            .map(|_| match session.invoke("LambdaState") {
                Some(MockedResult::Throw { error, .. }) => error,
                Some(MockedResult::Return(_)) => "Return".into(),
                None => "None".into(),
            })
            .collect();
        assert_eq!(
            errors,
            vec![
                "Lambda.ResourceNotReadyException",
                "Lambda.TimeoutException",
                "Lambda.TimeoutException",
                "Return"
            ]
        );
        assert_eq!(session.invoke("Unmocked"), None);
        assert_eq!(session.counter.count("Unmocked"), 0);
    }

    #[test]
    fn test_case_suffix_of_execution_arn() {
        assert_eq!(
            split_test_case(
                "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline#HappyPath"
            ),
            (
                "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline",
                Some("HappyPath")
            )
        );
        assert_eq!(split_test_case("Pipeline"), ("Pipeline", None));
        assert_eq!(split_test_case("Pipeline#"), ("Pipeline#", None));
    }

    #[test]
    fn gaps_are_allowed_but_fail_when_reached() {
        let cfg = MockConfig::from_value(&json!({
            "StateMachines": {"S": {"TestCases": {"T": {"A": "R"}}}},
            "MockedResponses": {"R": {"0": {"Return": 1}, "2": {"Return": 3}}}
        }))
        .expect("valid");
        let case = cfg.test_case("S", "T").expect("case");
        assert_eq!(case.response("A", 0), Some(MockedResult::Return(json!(1))));
        assert!(matches!(case.lookup("A", 1), MockLookup::Exhausted { .. }));
        assert_eq!(case.response("A", 2), Some(MockedResult::Return(json!(3))));
    }

    proptest::proptest! {
        #[test]
        fn from_json_never_panics(text in ".{0,200}") {
            let _ = MockConfig::from_json(&text);
        }

        #[test]
        fn lookups_never_panic(key in "[0-9-]{1,8}", state in "[A-Za-z]{0,4}", n in proptest::prelude::any::<u32>()) {
            let v = json!({
                "StateMachines": {"S": {"TestCases": {"T": {"A": "R"}}}},
                "MockedResponses": {"R": {key: {"Return": 1}}}
            });
            if let Ok(cfg) = MockConfig::from_value(&v) {
                let case = cfg.test_case("S", "T").expect("case exists");
                let _ = case.response(&state, n);
                let _ = case.response("A", n);
            }
        }
    }
}

//! The state machine drawn as a graph, with each state's status from the execution history —
//! the console's version of the Step Functions console's graph view.
//!
//! The definition is small (a dozen or two states) and fixed per runtime, so the layout is a
//! plain layered one computed here rather than a general graph-layout library: states are put
//! in rows by their longest forward distance from `StartAt`, edges back up the graph (the stage
//! loop) are drawn beside it. Every node carries `data-state="<name>"`, so the page can recolour
//! the states from `/api/jobs/{id}` without redrawing the SVG.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How a transition is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// `Next`, a Choice rule or its `Default`.
    Next,
    /// A `Catch` (an error path).
    Catch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
}

/// One state of the definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateNode {
    pub name: String,
    /// `Task`, `Choice`, `Map`, ...
    pub kind: String,
    pub next: Option<String>,
    pub catch: Vec<String>,
}

/// The top-level states and transitions of a state machine definition.
#[derive(Debug, Clone)]
pub struct Graph {
    pub start_at: String,
    pub states: Vec<StateNode>,
    pub edges: Vec<Edge>,
}

impl Graph {
    /// Reads a definition's top level (nested Map/Parallel states are shown as their state).
    pub fn from_definition(definition: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(definition).map_err(|e| e.to_string())?;
        let start_at = doc["StartAt"]
            .as_str()
            .ok_or("the definition has no StartAt")?
            .to_string();
        let states_obj = doc["States"]
            .as_object()
            .ok_or("the definition has no States")?;
        let mut states = Vec::new();
        let mut edges = Vec::new();
        let mut add = |from: &str, to: Option<&str>, kind| {
            if let Some(to) = to {
                let e = Edge {
                    from: from.to_string(),
                    to: to.to_string(),
                    kind,
                };
                if !edges.contains(&e) {
                    edges.push(e);
                }
            }
        };
        for (name, state) in states_obj {
            add(name, state["Next"].as_str(), EdgeKind::Next);
            for choice in state["Choices"].as_array().into_iter().flatten() {
                add(name, choice["Next"].as_str(), EdgeKind::Next);
            }
            add(name, state["Default"].as_str(), EdgeKind::Next);
            let catch: Vec<String> = state["Catch"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["Next"].as_str().map(str::to_string))
                .collect();
            for c in &catch {
                add(name, Some(c), EdgeKind::Catch);
            }
            states.push(StateNode {
                name: name.clone(),
                kind: state["Type"].as_str().unwrap_or("?").to_string(),
                next: state["Next"].as_str().map(str::to_string),
                catch,
            });
        }
        Ok(Self {
            start_at,
            states,
            edges,
        })
    }

    fn state(&self, name: &str) -> Option<&StateNode> {
        self.states.iter().find(|s| s.name == name)
    }
}

/// What a state did in the job's execution so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StateStatus {
    NotRun,
    Running,
    Succeeded,
    /// It failed: its error was caught (the path went on to a Catch target), or it is a Fail
    /// state that was reached.
    Failed,
    /// It was running when the execution was stopped.
    Aborted,
}

impl StateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StateStatus::NotRun => "not-run",
            StateStatus::Running => "running",
            StateStatus::Succeeded => "succeeded",
            StateStatus::Failed => "failed",
            StateStatus::Aborted => "aborted",
        }
    }
}

/// A state's status and how often it was entered (the stage loop enters some many times).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateProgress {
    pub status: StateStatus,
    pub visits: u32,
}

/// Each top-level state's status, from the execution's history events (AWS
/// GetExecutionHistory shapes, as the engine records them).
pub fn statuses(graph: &Graph, history: &[Value]) -> BTreeMap<String, StateProgress> {
    let mut out: BTreeMap<String, StateProgress> = graph
        .states
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                StateProgress {
                    status: StateStatus::NotRun,
                    visits: 0,
                },
            )
        })
        .collect();
    let top: HashSet<&str> = graph.states.iter().map(|s| s.name.as_str()).collect();
    // The top-level state running now, whether an error was seen while it ran, and the
    // state that exited last (its status depends on where the path goes next).
    let mut current: Option<(String, bool)> = None;
    let mut exited: Option<(String, bool)> = None;
    let settle_exited = |out: &mut BTreeMap<String, StateProgress>,
                         exited: &mut Option<(String, bool)>,
                         entered: Option<&str>| {
        if let Some((name, failed)) = exited.take() {
            let caught = failed
                && entered.is_some_and(|next| {
                    graph
                        .state(&name)
                        .is_some_and(|s| s.catch.iter().any(|c| c == next))
                });
            if let Some(p) = out.get_mut(&name) {
                p.status = if caught {
                    StateStatus::Failed
                } else {
                    StateStatus::Succeeded
                };
            }
        }
    };
    for event in history {
        let kind = event["type"].as_str().unwrap_or("");
        if let Some(name) = event["stateEnteredEventDetails"]["name"]
            .as_str()
            .filter(|n| kind.ends_with("StateEntered") && top.contains(n))
        {
            settle_exited(&mut out, &mut exited, Some(name));
            if let Some(p) = out.get_mut(name) {
                p.visits += 1;
                p.status = StateStatus::Running;
            }
            current = Some((name.to_string(), false));
            if kind == "FailStateEntered" {
                if let Some(p) = out.get_mut(name) {
                    p.status = StateStatus::Failed;
                }
                current = None;
            }
        } else if let Some(name) = event["stateExitedEventDetails"]["name"]
            .as_str()
            .filter(|n| kind.ends_with("StateExited") && top.contains(n))
        {
            let failed = current
                .take()
                .is_some_and(|(c, failed)| c == name && failed);
            exited = Some((name.to_string(), failed));
            if kind == "SucceedStateExited" {
                settle_exited(&mut out, &mut exited, None);
            }
        } else if kind == "ExecutionAborted" || kind == "ExecutionTimedOut" {
            if let Some((name, _)) = current.take()
                && let Some(p) = out.get_mut(&name)
            {
                p.status = StateStatus::Aborted;
            }
            settle_exited(&mut out, &mut exited, None);
        } else if kind == "ExecutionFailed" {
            if let Some((name, _)) = current.take()
                && let Some(p) = out.get_mut(&name)
            {
                p.status = StateStatus::Failed;
            }
            settle_exited(&mut out, &mut exited, None);
        } else if kind == "ExecutionSucceeded" {
            settle_exited(&mut out, &mut exited, None);
        } else if (kind.ends_with("Failed") || kind.ends_with("TimedOut"))
            && !kind.starts_with("Execution")
            && let Some((_, failed)) = current.as_mut()
        {
            *failed = true;
        }
    }
    out
}

/// A positioned node.
#[derive(Debug, Clone)]
struct Placed {
    x: f64,
    y: f64,
    rank: usize,
}

const NODE_W: f64 = 150.0;
const NODE_H: f64 = 30.0;
const ROW: f64 = 52.0;
const COL: f64 = 175.0;
const MARGIN: f64 = 20.0;

/// The graph as an SVG document with every node's initial status as its class.
pub fn svg(graph: &Graph, statuses: &BTreeMap<String, StateProgress>) -> String {
    let (placed, width, height, back) = layout(graph);
    let mut s = String::new();
    s.push_str(&format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" role="img" aria-label="state machine graph">"#
    ));
    s.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>"#);
    // Catch edges first, faint, so the normal path is drawn over them.
    let mut edges: Vec<&Edge> = graph.edges.iter().collect();
    edges.sort_by_key(|e| e.kind == EdgeKind::Next);
    for e in edges {
        let (Some(a), Some(b)) = (placed.get(&e.from), placed.get(&e.to)) else {
            continue;
        };
        let class = match e.kind {
            EdgeKind::Next => "edge",
            EdgeKind::Catch => "edge catch",
        };
        let d = if back.contains(&(e.from.clone(), e.to.clone())) {
            // Up the graph: out of the right side, around, into the right side.
            let (x1, y1) = (a.x + NODE_W / 2.0, a.y);
            let (x2, y2) = (b.x + NODE_W / 2.0, b.y);
            let out = x1.max(x2) + 40.0 + 10.0 * (a.rank - b.rank) as f64;
            format!("M{x1:.1},{y1:.1} C{out:.1},{y1:.1} {out:.1},{y2:.1} {x2:.1},{y2:.1}")
        } else {
            let (x1, y1) = (a.x, a.y + NODE_H / 2.0);
            let (x2, y2) = (b.x, b.y - NODE_H / 2.0);
            let dy = (y2 - y1) / 2.0;
            format!(
                "M{x1:.1},{y1:.1} C{x1:.1},{:.1} {x2:.1},{:.1} {x2:.1},{y2:.1}",
                y1 + dy,
                y2 - dy
            )
        };
        s.push_str(&format!(
            r#"<path class="{class}" d="{d}" marker-end="url(#arrow)"/>"#
        ));
    }
    for st in &graph.states {
        let Some(p) = placed.get(&st.name) else {
            continue;
        };
        let progress = statuses.get(&st.name).copied().unwrap_or(StateProgress {
            status: StateStatus::NotRun,
            visits: 0,
        });
        let name = escape(&st.name);
        let shape = match st.kind.as_str() {
            "Choice" => "choice",
            "Succeed" | "Fail" => "end",
            "Map" | "Parallel" => "map",
            _ => "task",
        };
        s.push_str(&format!(
            r#"<g class="node {shape} {status}" data-state="{name}" transform="translate({:.1},{:.1})"><title>{name} ({kind}): {status}</title><rect x="{:.1}" y="{:.1}" width="{NODE_W}" height="{NODE_H}" rx="{rx}"/><text text-anchor="middle" dy="4">{name}</text><text class="visits" x="{:.1}" dy="-8" text-anchor="end">{visits}</text></g>"#,
            p.x,
            p.y,
            -NODE_W / 2.0,
            -NODE_H / 2.0,
            NODE_W / 2.0 - 4.0,
            status = progress.status.as_str(),
            kind = escape(&st.kind),
            rx = if shape == "choice" { 15 } else { 4 },
            visits = if progress.visits > 1 {
                format!("×{}", progress.visits)
            } else {
                String::new()
            },
        ));
    }
    s.push_str("</svg>");
    s
}

type Layout = (HashMap<String, Placed>, f64, f64, HashSet<(String, String)>);

/// Rows by longest forward distance from the start; back edges found by a depth-first walk.
fn layout(graph: &Graph) -> Layout {
    let out_edges =
        |n: &str| -> Vec<&Edge> { graph.edges.iter().filter(|e| e.from == n).collect() };
    // Depth-first from StartAt: an edge to a state on the current path goes back up.
    let mut back = HashSet::new();
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    fn dfs<'a>(
        n: &'a str,
        out_edges: &dyn Fn(&str) -> Vec<&'a Edge>,
        on_path: &mut Vec<&'a str>,
        seen: &mut HashSet<&'a str>,
        back: &mut HashSet<(String, String)>,
        order: &mut Vec<&'a str>,
    ) {
        seen.insert(n);
        on_path.push(n);
        order.push(n);
        // The normal path first, so rows follow it; error paths after.
        let mut edges = out_edges(n);
        edges.sort_by_key(|e| e.kind == EdgeKind::Catch);
        for e in edges {
            if on_path.contains(&e.to.as_str()) {
                back.insert((e.from.clone(), e.to.clone()));
            } else if !seen.contains(e.to.as_str()) {
                dfs(&e.to, out_edges, on_path, seen, back, order);
            }
        }
        on_path.pop();
    }
    let mut on_path = Vec::new();
    dfs(
        &graph.start_at,
        &out_edges,
        &mut on_path,
        &mut seen,
        &mut back,
        &mut order,
    );
    // States unreachable from StartAt still get drawn, at the end.
    for s in &graph.states {
        if !seen.contains(s.name.as_str()) {
            order.push(&s.name);
        }
    }
    // Longest path over forward edges, in a topological order (the DFS pre-order is not one,
    // so relax until nothing changes; the graph is small).
    let mut rank: HashMap<&str, usize> = order.iter().map(|n| (*n, 0)).collect();
    for _ in 0..order.len() {
        let mut changed = false;
        for e in &graph.edges {
            if back.contains(&(e.from.clone(), e.to.clone())) {
                continue;
            }
            let (Some(&rf), Some(&rt)) = (rank.get(e.from.as_str()), rank.get(e.to.as_str()))
            else {
                continue;
            };
            if rt < rf + 1 {
                rank.insert(e.to.as_str(), rf + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut rows: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for n in &order {
        rows.entry(rank[n]).or_default().push(n);
    }
    let widest = rows.values().map(Vec::len).max().unwrap_or(1);
    let inner = (widest as f64 - 1.0) * COL + NODE_W;
    let mut placed = HashMap::new();
    for (r, names) in &rows {
        let row_width = (names.len() as f64 - 1.0) * COL;
        for (i, n) in names.iter().enumerate() {
            placed.insert(
                n.to_string(),
                Placed {
                    x: MARGIN + inner / 2.0 - row_width / 2.0 + i as f64 * COL,
                    y: MARGIN + NODE_H / 2.0 + *r as f64 * ROW,
                    rank: *r,
                },
            );
        }
    }
    let width = inner + 2.0 * MARGIN + 140.0;
    let height = MARGIN * 2.0 + NODE_H + rows.len().saturating_sub(1) as f64 * ROW;
    (placed, width, height, back)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline() -> Graph {
        Graph::from_definition(sluice_local::runtime::PIPELINE_ASL).unwrap()
    }

    #[test]
    fn the_pipeline_machine_is_laid_out_with_its_loop_as_back_edges() {
        let g = pipeline();
        assert_eq!(g.start_at, "Plan");
        let (placed, _, _, back) = layout(&g);
        assert_eq!(placed.len(), g.states.len());
        assert!(back.contains(&("CloseStage".to_string(), "NextStage".to_string())));
        assert!(placed["Plan"].rank < placed["NextStage"].rank);
        assert!(placed["RunTasks"].rank < placed["CloseStage"].rank);
        assert!(placed["ScaleDown"].rank > placed["RecordFailure"].rank);
        let svg = svg(&g, &statuses(&g, &[]));
        assert!(svg.contains(r#"data-state="RunTasks""#), "{svg}");
    }

    fn entered(kind: &str, name: &str) -> Value {
        json!({"type": format!("{kind}StateEntered"), "stateEnteredEventDetails": {"name": name}})
    }
    fn exited(kind: &str, name: &str) -> Value {
        json!({"type": format!("{kind}StateExited"), "stateExitedEventDetails": {"name": name}})
    }

    #[test]
    fn statuses_follow_the_history() {
        let g = pipeline();
        let history = vec![
            json!({"type": "ExecutionStarted"}),
            entered("Task", "Plan"),
            exited("Task", "Plan"),
            entered("Pass", "FirstStage"),
            exited("Pass", "FirstStage"),
            entered("Task", "NextStage"),
            exited("Task", "NextStage"),
            entered("Choice", "StageKind"),
            exited("Choice", "StageKind"),
            entered("Task", "ScaleUp"),
            exited("Task", "ScaleUp"),
            entered("Map", "RunTasks"),
            exited("Map", "RunTasks"),
            entered("Task", "CloseStage"),
            json!({"type": "TaskFailed"}),
            exited("Task", "CloseStage"),
            entered("Task", "RecordFailure"),
        ];
        let st = statuses(&g, &history);
        assert_eq!(st["Plan"].status, StateStatus::Succeeded);
        assert_eq!(st["RunTasks"].status, StateStatus::Succeeded);
        assert_eq!(st["CloseStage"].status, StateStatus::Failed);
        assert_eq!(st["RecordFailure"].status, StateStatus::Running);
        assert_eq!(st["Finish"].status, StateStatus::NotRun);
        let mut stopped = history.clone();
        stopped.push(json!({"type": "ExecutionAborted"}));
        assert_eq!(
            statuses(&g, &stopped)["RecordFailure"].status,
            StateStatus::Aborted
        );
        // The stage loop: NextStage entered twice.
        let mut again = history[..14].to_vec();
        again.push(exited("Task", "CloseStage"));
        again.push(entered("Task", "NextStage"));
        let st = statuses(&g, &again);
        assert_eq!(st["CloseStage"].status, StateStatus::Succeeded);
        assert_eq!(st["NextStage"].visits, 2);
        assert_eq!(st["NextStage"].status, StateStatus::Running);
    }
}

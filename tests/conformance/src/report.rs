//! The report: each difference with Envoy's and wasp's side by side, and the closing summary
//! line.

use std::fmt::Write as _;

use crate::compare::Mismatch;

/// Width of Envoy's column.
const COLUMN: usize = 64;

/// How one case ended.
pub enum Outcome {
    Identical,
    /// Every mismatch is in an aspect the case documents (ids of docs/compatibility.md).
    Documented(Vec<(Mismatch, String)>),
    Failed(Vec<Mismatch>),
}

/// Both sides aligned on their longest common subsequence: equal lines once in both columns,
/// the rest marked with `!`.
pub fn side_by_side(m: &Mismatch) -> String {
    let (a, b) = (&m.envoy, &m.wasp);
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "      {:<COLUMN$} | wasp", "envoy");
    let row = |out: &mut String, mark: char, l: &str, r: &str| {
        let _ = writeln!(out, "    {mark} {l:<COLUMN$} | {r}");
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            row(&mut out, ' ', &a[i], &b[j]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            row(&mut out, '!', "", &b[j]);
            j += 1;
        } else {
            row(&mut out, '!', &a[i], "");
            i += 1;
        }
    }
    out
}

#[derive(Default)]
pub struct Summary {
    pub scenarios: usize,
    pub cases: usize,
    pub identical: usize,
    pub documented: usize,
    pub failed: usize,
    /// `file/case` of each failed case, with its report, repeated in the test's panic message
    /// (the part of a long output that CI logs keep).
    pub failures: Vec<String>,
}

impl Summary {
    pub fn add(&mut self, file: &str, case: &str, outcome: &Outcome) {
        self.cases += 1;
        match outcome {
            Outcome::Identical => self.identical += 1,
            Outcome::Documented(_) => self.documented += 1,
            Outcome::Failed(_) => {
                self.failed += 1;
                self.failures.push(case_report(file, case, outcome));
            }
        }
    }

    pub fn line(&self) -> String {
        format!(
            "conformance: {} scenarios ({} cases) run, {} identical, {} documented differences, {} failed",
            self.scenarios, self.cases, self.identical, self.documented, self.failed
        )
    }
}

/// What one case prints: one line, then every difference side by side.
pub fn case_report(file: &str, case: &str, outcome: &Outcome) -> String {
    let mut out = String::new();
    match outcome {
        Outcome::Identical => {
            let _ = writeln!(out, "  ok        {file}/{case}");
        }
        Outcome::Documented(list) => {
            let ids: Vec<&str> = list.iter().map(|(_, id)| id.as_str()).collect();
            let mut ids = ids;
            ids.dedup();
            let _ = writeln!(
                out,
                "  differs   {file}/{case} (documented: {})",
                ids.join(", ")
            );
            for (m, id) in list {
                let _ = writeln!(out, "    {} of {} [{id}]", m.aspect.label(), m.what);
                out.push_str(&side_by_side(m));
            }
        }
        Outcome::Failed(list) => {
            let _ = writeln!(out, "  FAILED    {file}/{case}");
            for m in list {
                let _ = writeln!(out, "    {} of {}", m.aspect.label(), m.what);
                out.push_str(&side_by_side(m));
            }
        }
    }
    out
}

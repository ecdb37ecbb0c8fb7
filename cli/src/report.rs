//! What a check found, printed one finding a line, errors first.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The edge would refuse to serve, or serve wrongly: the check fails.
    Error,
    /// Works, but probably not what was meant.
    Warning,
    /// Something the check could not see.
    Note,
}

#[derive(Debug, Default)]
pub struct Report {
    findings: Vec<(Severity, String)>,
}

impl Report {
    pub fn error(&mut self, text: impl Into<String>) {
        self.findings.push((Severity::Error, text.into()));
    }

    pub fn warning(&mut self, text: impl Into<String>) {
        self.findings.push((Severity::Warning, text.into()));
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.findings.push((Severity::Note, text.into()));
    }

    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|(severity, _)| *severity == Severity::Error)
    }

    #[cfg(test)]
    pub fn findings(&self, severity: Severity) -> Vec<&str> {
        self.findings.iter().filter(|(s, _)| *s == severity).map(|(_, t)| t.as_str()).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut findings: Vec<_> = self.findings.iter().collect();
        findings.sort_by_key(|(severity, _)| *severity);
        for (severity, text) in findings {
            let label = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            writeln!(f, "{label}: {text}")?;
        }
        Ok(())
    }
}

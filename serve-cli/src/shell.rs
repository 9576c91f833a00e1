//! `twotower query`: the interactive shell over a [`Recommender`]. One grammar serves people at a terminal
//! (rustyline: editing, history, completion, tables) and scripts on a pipe (same commands, one JSON
//! object per answer with `--format jsonl`).

use anyhow::{bail, Context, Result};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use twotower_cli::recommender::{Answer, ItemInfo, Poll, QueryOpts, Recommender, ReloadGate, Source};

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables for people.
    Table,
    /// One JSON object per command, for scripts.
    Jsonl,
}

/// Every command the shell understands, parsed from one line.
#[derive(Debug, Clone, PartialEq)]
pub enum ShellCommand {
    /// Top-k for a known user id.
    User { id: String, k: Option<usize> },
    /// Top-k for an anonymous user described by items just touched (real-time path).
    Recent { items: Vec<String> },
    /// Items closest to an item.
    Similar { id: String, k: Option<usize> },
    /// Look an item up by id.
    Item { id: String },
    /// Look items up by words of their title.
    Find { words: String },
    /// The user's most recent training interactions.
    History { id: String, n: Option<usize> },
    /// Set the default number of results.
    SetK(usize),
    /// Set the HNSW search breadth.
    SetEf(usize),
    /// Use the exact index alongside (and compare with) the ANN index.
    SetExact(bool),
    /// Exclude items the user already has.
    SetSeen(bool),
    /// Restrict results to a genre, or lift the restriction.
    Filter(Option<String>),
    /// Move to the index version CURRENT names now.
    Reload,
    /// Model, index and latency statistics.
    Stats,
    /// The command list.
    Help,
    /// Leave the shell.
    Quit,
    /// A blank line or a comment.
    Nothing,
}

/// The command words, for `help` and tab completion.
pub const COMMANDS: &[(&str, &str)] = &[
    ("user", "user <id> [k]            top-k items for a known user"),
    (
        "recent",
        "recent <item> <item> …   recommendations for items just touched (no retraining)",
    ),
    ("similar", "similar <item> [k]       items closest to an item"),
    ("item", "item <id>                one item's title and genres"),
    (
        "find",
        "find <words>             items whose title has these words",
    ),
    (
        "history",
        "history <user> [n]       the user's latest training interactions",
    ),
    ("k", "k <n>                    results per answer"),
    (
        "ef",
        "ef <n>                   HNSW search breadth (higher: better recall, slower)",
    ),
    (
        "exact",
        "exact on|off             also search exactly and report ANN overlap",
    ),
    (
        "seen",
        "seen on|off              show items the user already has (off hides them)",
    ),
    ("filter", "filter genre=<g> | off   only items of a genre"),
    (
        "reload",
        "reload                   pick up a rebuilt index (also noticed on its own)",
    ),
    (
        "stats",
        "stats                    model, index version, catalog, latency percentiles",
    ),
    ("help", "help                     this list"),
    ("quit", "quit                     leave (or Ctrl-D)"),
];

fn on_off(word: Option<&str>, cmd: &str) -> Result<bool> {
    match word {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        _ => bail!("usage: {cmd} on|off"),
    }
}

fn opt_count(word: Option<&str>, what: &str) -> Result<Option<usize>> {
    word.map(|w| {
        w.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .with_context(|| format!("{what} must be a positive whole number, not {w:?}"))
    })
    .transpose()
}

fn count(word: Option<&str>, what: &str) -> Result<usize> {
    opt_count(word, what)?.with_context(|| format!("usage: {what} <n>"))
}

/// Parses one line of shell input; errors are messages for the person who typed it.
pub fn parse(line: &str) -> Result<ShellCommand> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(ShellCommand::Nothing);
    }
    let mut words = line.split_whitespace();
    let head = words.next().unwrap_or_default().to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let arg = |i: usize| rest.get(i).copied();
    let no_more = |n: usize| -> Result<()> {
        if rest.len() > n {
            bail!("{head}: unexpected {:?} (try `help`)", rest[n]);
        }
        Ok(())
    };
    let cmd = match head.as_str() {
        "user" | "u" => {
            no_more(2)?;
            ShellCommand::User {
                id: arg(0).context("usage: user <id> [k]")?.to_string(),
                k: opt_count(arg(1), "k")?,
            }
        }
        "recent" | "r" => {
            if rest.is_empty() {
                bail!("usage: recent <item> <item> …");
            }
            ShellCommand::Recent {
                items: rest.iter().map(|s| s.to_string()).collect(),
            }
        }
        "similar" | "s" => {
            no_more(2)?;
            ShellCommand::Similar {
                id: arg(0).context("usage: similar <item> [k]")?.to_string(),
                k: opt_count(arg(1), "k")?,
            }
        }
        "item" | "i" => {
            no_more(1)?;
            ShellCommand::Item {
                id: arg(0).context("usage: item <id>")?.to_string(),
            }
        }
        "find" | "f" => {
            if rest.is_empty() {
                bail!("usage: find <words>");
            }
            ShellCommand::Find {
                words: rest.join(" "),
            }
        }
        "history" | "h" => {
            no_more(2)?;
            ShellCommand::History {
                id: arg(0).context("usage: history <user> [n]")?.to_string(),
                n: opt_count(arg(1), "n")?,
            }
        }
        "k" => {
            no_more(1)?;
            ShellCommand::SetK(count(arg(0), "k")?)
        }
        "ef" => {
            no_more(1)?;
            ShellCommand::SetEf(count(arg(0), "ef")?)
        }
        "exact" => {
            no_more(1)?;
            ShellCommand::SetExact(on_off(arg(0), "exact")?)
        }
        "seen" => {
            no_more(1)?;
            ShellCommand::SetSeen(on_off(arg(0), "seen")?)
        }
        "filter" => {
            no_more(1)?;
            match arg(0) {
                Some("off") => ShellCommand::Filter(None),
                Some(f) => match f.split_once('=') {
                    Some(("genre", g)) if !g.is_empty() => ShellCommand::Filter(Some(g.to_string())),
                    _ => bail!("usage: filter genre=<genre> | filter off"),
                },
                None => bail!("usage: filter genre=<genre> | filter off"),
            }
        }
        "reload" => ShellCommand::Reload,
        "stats" => ShellCommand::Stats,
        "help" | "?" => ShellCommand::Help,
        "quit" | "exit" | "q" => ShellCommand::Quit,
        other => bail!("unknown command {other:?} (try `help`)"),
    };
    Ok(cmd)
}

/// Latencies of answered queries, for `stats` percentiles.
#[derive(Default)]
pub struct Latencies(Vec<f64>);

impl Latencies {
    /// Records one query's wall time.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1e3);
    }
    /// The p-th percentile in ms (nearest rank), or None before any query.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        Some(v[rank.min(v.len()) - 1])
    }
    /// Queries so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// A shell answer: the recommender's [`Answer`] with the command that asked for it.
#[derive(serde::Serialize)]
struct ShellAnswer<'a> {
    cmd: &'a str,
    #[serde(flatten)]
    answer: &'a Answer,
}

/// The shell's state: the recommender, the settings and the output format.
pub struct Shell<'e, W: Write> {
    engine: &'e Recommender,
    opts: QueryOpts,
    format: Format,
    out: W,
    latencies: Latencies,
    gate: ReloadGate,
    /// A note about an unreadable index was printed and nothing has loaded since.
    broken_noted: bool,
}

impl<'e, W: Write> Shell<'e, W> {
    /// A shell writing answers to `out`.
    pub fn new(engine: &'e Recommender, opts: QueryOpts, format: Format, out: W) -> Self {
        Shell {
            engine,
            opts,
            format,
            out,
            latencies: Latencies::default(),
            gate: ReloadGate::new(Duration::ZERO, Duration::ZERO),
            broken_noted: false,
        }
    }

    /// Follows a rebuild that swapped CURRENT since the last line. A CURRENT that turned unreadable
    /// (or a version that does not load) is noted once; answers keep coming from the loaded version.
    fn follow_index(&mut self) -> Result<()> {
        match self.gate.poll(self.engine) {
            Poll::Reloaded(v) => {
                self.broken_noted = false;
                self.note(&format!("index moved to version {v}"))?;
            }
            Poll::Unchanged => {
                if std::mem::take(&mut self.broken_noted) {
                    let v = self.engine.backend().version;
                    self.note(&format!("index readable again: still version {v}"))?;
                }
            }
            Poll::Failed(e) => {
                if !self.broken_noted {
                    self.broken_noted = true;
                    let v = self.engine.backend().version;
                    self.note(&format!(
                        "cannot follow the index ({e}); still answering from version {v}"
                    ))?;
                }
            }
            Poll::Waiting => {}
        }
        Ok(())
    }

    /// Runs one line; `Ok(false)` means quit. Errors are user mistakes to report, not fatal.
    pub fn execute(&mut self, line: &str) -> Result<bool> {
        self.follow_index()?;
        let cmd = parse(line)?;
        match cmd {
            ShellCommand::Nothing => {}
            ShellCommand::Quit => return Ok(false),
            ShellCommand::Help => self.help()?,
            ShellCommand::User { id, k } => {
                let opts = self.with_k(k);
                let t = Instant::now();
                let ans = self.engine.recommend_user(&id, &opts)?;
                self.latencies.push(t.elapsed());
                self.answer("user", &ans)?;
            }
            ShellCommand::Recent { items } => {
                let opts = self.opts.clone();
                let t = Instant::now();
                let ans = self.engine.recommend_recent(&items, &opts)?;
                self.latencies.push(t.elapsed());
                self.answer("recent", &ans)?;
            }
            ShellCommand::Similar { id, k } => {
                let opts = self.with_k(k);
                let t = Instant::now();
                let ans = self.engine.similar(&id, &opts)?;
                self.latencies.push(t.elapsed());
                self.answer("similar", &ans)?;
            }
            ShellCommand::Item { id } => {
                let info = self.engine.item(&id)?;
                self.items("item", &[info])?;
            }
            ShellCommand::Find { words } => {
                let found = self.engine.find(&words, self.opts.k.max(10));
                if found.is_empty() && self.format == Format::Table {
                    self.note(&format!("no title has all of {words:?}"))?;
                } else {
                    self.items("find", &found)?;
                }
            }
            ShellCommand::History { id, n } => {
                let rows = self.engine.history(&id, n.unwrap_or(10))?;
                self.history(&id, &rows)?;
            }
            ShellCommand::SetK(k) => {
                self.opts.k = k;
                self.setting("k", json!(k))?;
            }
            ShellCommand::SetEf(ef) => {
                self.opts.ef = ef;
                self.setting("ef", json!(ef))?;
            }
            ShellCommand::SetExact(on) => {
                self.opts.exact = on;
                self.setting("exact", json!(on))?;
            }
            ShellCommand::SetSeen(on) => {
                self.opts.exclude_seen = !on;
                self.setting("seen", json!(on))?;
            }
            ShellCommand::Filter(g) => {
                if let Some(g) = &g {
                    self.engine.check_genre(g)?;
                }
                self.opts.genre = g.clone();
                self.setting("filter", json!(g))?;
            }
            ShellCommand::Reload => {
                let v = self.engine.reload()?;
                self.setting("index_version", json!(v))?;
            }
            ShellCommand::Stats => self.stats()?,
        }
        Ok(true)
    }

    fn with_k(&self, k: Option<usize>) -> QueryOpts {
        let mut o = self.opts.clone();
        if let Some(k) = k {
            o.k = k;
        }
        o
    }

    fn note(&mut self, msg: &str) -> Result<()> {
        match self.format {
            Format::Table => writeln!(self.out, "{}", crate::term::text(msg))?,
            Format::Jsonl => writeln!(self.out, "{}", json!({ "note": crate::term::redact(msg) }))?,
        }
        Ok(())
    }

    fn setting(&mut self, name: &str, value: serde_json::Value) -> Result<()> {
        match self.format {
            Format::Table => writeln!(self.out, "{name} = {value}")?,
            Format::Jsonl => writeln!(self.out, "{}", json!({ "set": name, "value": value }))?,
        }
        Ok(())
    }

    fn help(&mut self) -> Result<()> {
        match self.format {
            Format::Table => {
                for (_, line) in COMMANDS {
                    writeln!(self.out, "  {line}")?;
                }
            }
            Format::Jsonl => {
                let list: Vec<_> = COMMANDS
                    .iter()
                    .map(|(cmd, line)| json!({"command": cmd, "usage": line}))
                    .collect();
                writeln!(self.out, "{}", json!({"cmd": "help", "commands": list}))?;
            }
        }
        Ok(())
    }

    fn answer(&mut self, cmd: &str, ans: &Answer) -> Result<()> {
        let query = ans.query.text();
        match self.format {
            Format::Jsonl => {
                let line = serde_json::to_string(&ShellAnswer { cmd, answer: ans })?;
                writeln!(self.out, "{line}")?;
            }
            Format::Table => {
                match ans.source {
                    Source::Known | Source::Items => {}
                    Source::Features => writeln!(
                        self.out,
                        "(user {} had no interactions in training: embedded from their features)",
                        crate::term::cell(&format!("{query:?}"))
                    )?,
                    Source::Popularity => writeln!(
                        self.out,
                        "(unknown user {}: showing the most popular items instead)",
                        crate::term::cell(&format!("{query:?}"))
                    )?,
                }
                let rows: Vec<[String; 5]> = ans
                    .results
                    .iter()
                    .map(|r| {
                        [
                            r.rank.to_string(),
                            r.item.clone(),
                            r.title.clone().unwrap_or_default(),
                            r.genres.join("|"),
                            format!("{:.4}", r.score),
                        ]
                    })
                    .collect();
                table(
                    &mut self.out,
                    &["rank", "item", "title", "genres", "score"],
                    &rows,
                )?;
                let mut tail = format!(
                    "{} results in {:.2} ms (embed {:.2} ms, search {:.2} ms, {}, index v{})",
                    ans.results.len(),
                    ans.took_ms,
                    ans.embed_ms,
                    ans.search_ms,
                    if self.opts.exact { "exact" } else { "hnsw" },
                    ans.index_version
                );
                if let Some(o) = ans.exact_overlap {
                    tail.push_str(&format!(
                        "; HNSW finds {:.0}% of the exact top-{}",
                        o * 100.0,
                        self.opts.k
                    ));
                }
                writeln!(self.out, "{tail}")?;
            }
        }
        Ok(())
    }

    fn items(&mut self, cmd: &str, items: &[ItemInfo]) -> Result<()> {
        match self.format {
            Format::Jsonl => {
                let list: Vec<_> = items
                    .iter()
                    .map(|i| json!({"item": i.id, "title": i.title, "genres": i.genres, "interactions": i.interactions}))
                    .collect();
                writeln!(self.out, "{}", json!({"cmd": cmd, "items": list}))?;
            }
            Format::Table => {
                let rows: Vec<[String; 4]> = items
                    .iter()
                    .map(|i| {
                        [
                            i.id.clone(),
                            i.title.clone().unwrap_or_default(),
                            i.genres.join("|"),
                            i.interactions.to_string(),
                        ]
                    })
                    .collect();
                table(&mut self.out, &["item", "title", "genres", "interactions"], &rows)?;
            }
        }
        Ok(())
    }

    fn history(&mut self, user: &str, rows: &[(ItemInfo, i64)]) -> Result<()> {
        match self.format {
            Format::Jsonl => {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(i, ts)| json!({"item": i.id, "title": i.title, "genres": i.genres, "ts": ts}))
                    .collect();
                writeln!(
                    self.out,
                    "{}",
                    json!({"cmd": "history", "user": user, "items": list})
                )?;
            }
            Format::Table => {
                let rows: Vec<[String; 4]> = rows
                    .iter()
                    .map(|(i, ts)| {
                        [
                            ts.to_string(),
                            i.id.clone(),
                            i.title.clone().unwrap_or_default(),
                            i.genres.join("|"),
                        ]
                    })
                    .collect();
                table(&mut self.out, &["ts", "item", "title", "genres"], &rows)?;
            }
        }
        Ok(())
    }

    fn stats(&mut self) -> Result<()> {
        let mut s = self.engine.describe();
        let lat = &self.latencies;
        s["queries"] = json!(lat.len());
        for p in [50.0, 90.0, 99.0] {
            s[format!("p{p}_ms")] = json!(lat.percentile(p));
        }
        s["settings"] = json!({"k": self.opts.k, "ef": self.opts.ef, "exact": self.opts.exact,
                               "seen": !self.opts.exclude_seen, "filter_genre": self.opts.genre});
        match self.format {
            Format::Jsonl => writeln!(self.out, "{s}")?,
            Format::Table => {
                if let Some(map) = s.as_object() {
                    for (k, v) in map {
                        writeln!(self.out, "{k:>16}: {v}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Prints an aligned table; the last column may be long and is not padded.
fn table<W: Write, const N: usize>(
    out: &mut W,
    header: &[&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    // Cells come from the catalogue: control characters are shown, never sent to the terminal.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| crate::term::cell(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count().min(60));
        }
    }
    let line = |out: &mut W, cells: Vec<&str>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c: String = c.chars().take(60).collect();
            if i + 1 == N {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{:<w$}  ", c, w = widths[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, header.to_vec())?;
    for r in &rows {
        line(out, r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// Tab completion of command words.
struct ShellHelper;

impl Completer for ShellHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if before.contains(char::is_whitespace) {
            return Ok((pos, vec![]));
        }
        let found = COMMANDS
            .iter()
            .filter(|(w, _)| w.starts_with(before))
            .map(|(w, _)| Pair {
                display: w.to_string(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((0, found))
    }
}
impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".twotower_history"))
}

/// Runs the shell until `quit`, Ctrl-D or the end of piped input. A terminal gets the line editor;
/// a pipe is read line by line and every error is printed and the next line read (exit status 1 at
/// the end if any line failed, so scripts notice).
pub fn run(engine: &Recommender, opts: QueryOpts, format: Option<Format>) -> Result<()> {
    let interactive = std::io::stdin().is_terminal();
    let format = format.unwrap_or(if interactive { Format::Table } else { Format::Jsonl });
    let stdout = std::io::stdout();
    let mut shell = Shell::new(engine, opts, format, stdout.lock());
    if !interactive {
        let mut failed = 0usize;
        let mut input = std::io::stdin().lock();
        let mut buf = Vec::new();
        let mut n = 0usize;
        loop {
            buf.clear();
            // Bytes, not `lines()`: one line that is not UTF-8 is answered with an error, and the
            // session goes on.
            if input
                .read_until(b'\n', &mut buf)
                .context("reading commands from stdin")?
                == 0
            {
                break;
            }
            n += 1;
            let result = match std::str::from_utf8(&buf) {
                Ok(line) => shell.execute(line),
                Err(e) => Err(anyhow::anyhow!("line {n} is not valid UTF-8 ({e}); skipped")),
            };
            match result {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    failed += 1;
                    report(&mut shell, &e)?;
                }
            }
        }
        if failed > 0 {
            bail!("{failed} command(s) failed");
        }
        return Ok(());
    }
    let mut rl: Editor<ShellHelper, DefaultHistory> = Editor::new().context("starting the line editor")?;
    rl.set_helper(Some(ShellHelper));
    let hist = history_path();
    if let Some(h) = &hist {
        let _ = rl.load_history(h); // first run: no history yet
    }
    writeln!(shell.out, "{}", shell.engine.banner())?;
    writeln!(shell.out, "type `help` for commands, Ctrl-D to leave")?;
    loop {
        match rl.readline("twotower> ") {
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                match shell.execute(&line) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => report(&mut shell, &e)?,
                }
            }
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C cancels the line
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading a line"),
        }
    }
    if let Some(h) = &hist {
        let _ = rl.save_history(h);
    }
    Ok(())
}

fn report<W: Write>(shell: &mut Shell<'_, W>, e: &anyhow::Error) -> Result<()> {
    match shell.format {
        Format::Table => writeln!(shell.out, "error: {}", crate::term::text(&format!("{e:#}")))?,
        Format::Jsonl => writeln!(
            shell.out,
            "{}",
            json!({ "error": crate::term::redact(&format!("{e:#}")) })
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(
            parse("user 42").unwrap(),
            ShellCommand::User {
                id: "42".into(),
                k: None
            }
        );
        assert_eq!(
            parse(" u 42 5 ").unwrap(),
            ShellCommand::User {
                id: "42".into(),
                k: Some(5)
            }
        );
        assert_eq!(
            parse("recent 1 2 3").unwrap(),
            ShellCommand::Recent {
                items: vec!["1".into(), "2".into(), "3".into()]
            }
        );
        assert_eq!(
            parse("similar 7 3").unwrap(),
            ShellCommand::Similar {
                id: "7".into(),
                k: Some(3)
            }
        );
        assert_eq!(
            parse("find star wars").unwrap(),
            ShellCommand::Find {
                words: "star wars".into()
            }
        );
        assert_eq!(
            parse("history 9").unwrap(),
            ShellCommand::History {
                id: "9".into(),
                n: None
            }
        );
        assert_eq!(parse("k 20").unwrap(), ShellCommand::SetK(20));
        assert_eq!(parse("ef 64").unwrap(), ShellCommand::SetEf(64));
        assert_eq!(parse("exact on").unwrap(), ShellCommand::SetExact(true));
        assert_eq!(parse("seen off").unwrap(), ShellCommand::SetSeen(false));
        assert_eq!(
            parse("filter genre=Drama").unwrap(),
            ShellCommand::Filter(Some("Drama".into()))
        );
        assert_eq!(parse("filter off").unwrap(), ShellCommand::Filter(None));
        assert_eq!(parse("# comment").unwrap(), ShellCommand::Nothing);
        assert_eq!(parse("QUIT").unwrap(), ShellCommand::Quit);
    }

    #[test]
    fn rejects_bad_lines_with_usage() {
        for (line, want) in [
            ("user", "usage: user"),
            ("user 1 0", "positive"),
            ("user 1 x", "positive"),
            ("user 1 2 3", "unexpected"),
            ("k", "usage: k"),
            ("exact maybe", "exact on|off"),
            ("filter year=1990", "usage: filter"),
            ("bogus", "unknown command"),
            ("recent", "usage: recent"),
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains(want), "{line:?} gave {e:?}");
        }
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), None);
        for ms in 1..=100 {
            l.push(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile(50.0), Some(50.0));
        assert_eq!(l.percentile(99.0), Some(99.0));
        assert_eq!(l.percentile(100.0), Some(100.0));
    }

    #[test]
    fn table_aligns_columns() {
        let mut out = Vec::new();
        table(
            &mut out,
            &["a", "bb"],
            &[["long".into(), "x".into()], ["s".into(), "y".into()]],
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "a     bb\nlong  x\ns     y\n");
    }
}

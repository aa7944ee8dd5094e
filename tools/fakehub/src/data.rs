//! The in-memory world: repositories, git objects, issues, pulls, runs; deterministic
//! seed data; JSON renderers shaped like GitHub's.

use crate::git::{self, FileDiff};
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub type Dt = DateTime<Utc>;
pub const WEB: &str = "https://github.com";

pub fn base_time() -> Dt {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

pub fn ts(d: &Dt) -> String {
    d.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn opt_ts(d: &Option<Dt>) -> Value {
    d.as_ref().map_or(Value::Null, |d| Value::String(ts(d)))
}

/// A 40-hex pseudo git id.
pub fn fake_sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))[..40].to_string()
}

pub struct Blob {
    pub sha: String,
    pub content: String,
}
pub type Tree = BTreeMap<String, Arc<Blob>>;

pub fn blob(content: String) -> Arc<Blob> {
    let sha = fake_sha(&format!("blob {}\0{content}", content.len()));
    Arc::new(Blob { sha, content })
}

pub struct Commit {
    pub sha: String,
    pub message: String,
    pub author: String,
    pub date: Dt,
    pub parents: Vec<String>,
    pub tree: Arc<Tree>,
}

pub struct Label {
    pub id: u64,
    pub color: String,
    pub description: String,
}

pub struct Comment {
    pub id: u64,
    pub user: String,
    pub body: String,
    pub created_at: Dt,
    pub updated_at: Dt,
}

pub struct Pull {
    pub id: u64,
    pub head: String,
    pub head_sha: String,
    pub base: String,
    pub merged_at: Option<Dt>,
    pub merge_commit_sha: Option<String>,
    /// Merge base recorded when merged (the diff stays visible afterwards).
    pub merged_base: Option<String>,
    pub draft: bool,
    /// Requested reviewers, reviews and review comments (see `reviews.rs`).
    pub reviews: crate::reviews::PullReviews,
}

pub struct Issue {
    pub number: u64,
    pub id: u64,
    pub title: String,
    pub body: Option<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub user: String,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub comments: Vec<Comment>,
    pub created_at: Dt,
    pub updated_at: Dt,
    pub closed_at: Option<Dt>,
    pub pull: Option<Pull>,
}

/// One job of a workflow run. Its state follows `since` (queued < 5 s, in_progress
/// < 15 s, then completed with `outcome`); seeded jobs (`since: None`) are completed.
pub struct Job {
    pub id: u64,
    pub name: String,
    /// Conclusion once completed: `success` or `failure`.
    pub outcome: String,
    /// Step names; the third (the job's work) fails when `outcome` is `failure`.
    pub steps: Vec<String>,
    pub since: Option<Dt>,
    pub cancelled: bool,
    /// Raw log text as GitHub serves it (timestamps, ANSI colours).
    pub log: String,
}

/// A commit status (`POST /statuses/{sha}` shape).
pub struct Status {
    pub id: u64,
    pub state: String,
    pub context: String,
    pub description: String,
    pub created_at: Dt,
}

pub struct Run {
    pub id: u64,
    pub attempt: u64,
    pub jobs: Vec<Job>,
    pub workflow_id: u64,
    pub head_branch: String,
    pub head_sha: String,
    pub event: String,
    pub run_number: u64,
    /// `Some` for seeded runs; `None` = progresses with time (queued → in_progress → completed).
    pub fixed: Option<(String, Option<String>)>,
    pub created_at: Dt,
}

pub struct Repo {
    pub id: u64,
    pub owner: String,
    pub name: String,
    pub description: String,
    pub topics: Vec<String>,
    pub default_branch: String,
    pub languages: Vec<(String, u64)>,
    pub stars: u64,
    pub forks: u64,
    pub created_at: Dt,
    pub updated_at: Dt,
    pub pushed_at: Dt,
    pub branches: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    pub issues: BTreeMap<u64, Issue>,
    pub labels: BTreeMap<String, Label>,
    pub workflows: Vec<(u64, String, String)>,
    pub runs: Vec<Run>,
    /// Every tree a commit or `POST /git/trees` made, by sha.
    pub trees: HashMap<String, Arc<Tree>>,
    /// Blobs made by `POST /git/blobs` (blobs of trees are found through the trees).
    pub blobs: HashMap<String, Arc<Blob>>,
    /// Commit statuses by commit sha.
    pub statuses: HashMap<String, Vec<Status>>,
    /// Tags by name (see `releases.rs`).
    pub tags: BTreeMap<String, crate::releases::Tag>,
    pub releases: Vec<crate::releases::Release>,
    /// Which merge methods the repository allows: merge commit, squash, rebase.
    pub merge_methods: [bool; 3],
}

pub struct World {
    pub repos: Vec<Repo>,
    pub next_id: u64,
    /// (repo index, branch): the next `PATCH /git/refs` first moves that branch by a
    /// commit of someone else, as a concurrent push would.
    pub intrude_on_ref_update: Option<(usize, String)>,
    /// Notifications, alerts, forks and privacy (see `triage.rs`).
    pub triage: crate::triage::Triage,
}

const ADJ: [&str; 11] = [
    "flaky",
    "slow",
    "broken",
    "missing",
    "stale",
    "duplicate",
    "racy",
    "verbose",
    "silent",
    "leaky",
    "cryptic",
];
const NOUN: [&str; 13] = [
    "parser",
    "cache",
    "tokenizer",
    "scheduler",
    "logger",
    "webhook",
    "migration",
    "renderer",
    "allocator",
    "watcher",
    "resolver",
    "uploader",
    "indexer",
];
const AREA: [&str; 7] = [
    "startup", "shutdown", "config", "network", "storage", "auth", "cli",
];
pub const PEOPLE: [&str; 3] = ["octocat", "alice", "bob"];

pub fn user_id(login: &str) -> u64 {
    match login {
        "octocat" => 1,
        "alice" => 2,
        "bob" => 3,
        "octo" => 10,
        _ => 1000 + u64::from_str_radix(&fake_sha(login)[..6], 16).unwrap_or(0),
    }
}

pub fn user_json(a: &str, login: &str) -> Value {
    let id = user_id(login);
    json!({
        "login": login, "id": id, "node_id": format!("U_kgDO{id:06}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "url": format!("{a}/users/{login}"), "html_url": format!("{WEB}/{login}"),
        "type": if login == "octo" { "Organization" } else { "User" }, "site_admin": false,
    })
}

impl World {
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo_index(&self, owner: &str, name: &str) -> Option<usize> {
        self.repos
            .iter()
            .position(|r| r.owner.eq_ignore_ascii_case(owner) && r.name.eq_ignore_ascii_case(name))
    }

    pub fn seed() -> World {
        let mut w = World {
            repos: Vec::new(),
            next_id: 1_000_000,
            intrude_on_ref_update: None,
            triage: crate::triage::Triage::seed(),
        };
        let hello = seed_hello(&mut w);
        let tools = seed_tools(&mut w);
        w.repos = vec![hello, tools];
        w
    }
}

pub fn new_repo(id: u64, name: &str, description: &str, languages: Vec<(String, u64)>) -> Repo {
    let t = base_time();
    let mut labels = BTreeMap::new();
    for (i, (n, c, d)) in [
        ("bug", "d73a4a", "Something isn't working"),
        (
            "docs",
            "0075ca",
            "Improvements or additions to documentation",
        ),
        ("enhancement", "a2eeef", "New feature or request"),
    ]
    .into_iter()
    .enumerate()
    {
        let label = Label {
            id: id * 10 + i as u64,
            color: c.into(),
            description: d.into(),
        };
        labels.insert(n.to_string(), label);
    }
    Repo {
        id,
        owner: "octo".into(),
        name: name.into(),
        description: description.into(),
        topics: vec!["rust".into(), "example".into(), name.into()],
        default_branch: "main".into(),
        languages,
        stars: 42,
        forks: 7,
        created_at: t,
        updated_at: t + Duration::hours(1000),
        pushed_at: t + Duration::hours(1000),
        branches: BTreeMap::new(),
        commits: HashMap::new(),
        issues: BTreeMap::new(),
        labels,
        workflows: Vec::new(),
        runs: Vec::new(),
        trees: HashMap::new(),
        blobs: HashMap::new(),
        statuses: HashMap::new(),
        tags: BTreeMap::new(),
        releases: Vec::new(),
        merge_methods: [true; 3],
    }
}

/// The id of a (flat, path → blob) tree: a digest of its sorted entries.
pub fn tree_sha(tree: &Tree) -> String {
    let mut s = String::from("tree\n");
    for (p, b) in tree {
        s.push_str(p);
        s.push(' ');
        s.push_str(&b.sha);
        s.push('\n');
    }
    fake_sha(&s)
}

impl Repo {
    pub fn full(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// Add a commit whose tree is the parent's tree with `changes` applied
    /// (`None` content deletes the path) and return its sha.
    pub fn commit(
        &mut self,
        parents: Vec<String>,
        base_tree: Option<&Tree>,
        changes: Vec<(String, Option<String>)>,
        message: &str,
        author: &str,
        date: Dt,
    ) -> String {
        let mut tree = base_tree.cloned().unwrap_or_default();
        for (path, content) in changes {
            match content {
                Some(c) => tree.insert(path, blob(c)),
                None => tree.remove(&path),
            };
        }
        self.commit_tree(parents, Arc::new(tree), message, author, date)
    }

    /// Add a commit of `tree` (registered by its sha) and return the commit's sha.
    pub fn commit_tree(
        &mut self,
        parents: Vec<String>,
        tree: Arc<Tree>,
        message: &str,
        author: &str,
        date: Dt,
    ) -> String {
        let sha = fake_sha(&format!(
            "{}|{}|{message}|{}",
            self.full(),
            parents.join(","),
            date.timestamp_nanos_opt().unwrap_or(0)
        ));
        let c = Commit {
            sha: sha.clone(),
            message: message.into(),
            author: author.into(),
            date,
            parents,
            tree: tree.clone(),
        };
        self.trees.insert(tree_sha(&tree), tree);
        self.commits.insert(sha.clone(), c);
        sha
    }

    /// The blob `sha` if any tree or `POST /git/blobs` holds it.
    pub fn find_blob(&self, sha: &str) -> Option<Arc<Blob>> {
        if let Some(b) = self.blobs.get(sha) {
            return Some(b.clone());
        }
        self.trees
            .values()
            .find_map(|t| t.values().find(|b| b.sha == sha).cloned())
    }

    /// Moves `branch` to a new commit on top of it, as a push does, and queues a CI run
    /// for it (`on: push`). Returns the commit sha.
    pub fn push_commit(
        &mut self,
        branch: &str,
        tree: Arc<Tree>,
        message: &str,
        author: &str,
        now: Dt,
    ) -> Option<String> {
        let parent = self.branches.get(branch)?.clone();
        let sha = self.commit_tree(vec![parent], tree, message, author, now);
        self.branches.insert(branch.to_string(), sha.clone());
        self.on_push(branch, &sha, now);
        Some(sha)
    }

    /// What a push to `branch` at `sha` triggers: a run of the CI workflow.
    pub fn on_push(&mut self, branch: &str, sha: &str, now: Dt) {
        self.pushed_at = now;
        let Some(wf) = self.workflows.first().map(|w| w.0) else {
            return;
        };
        self.start_run(wf, branch, sha, "push", now);
    }

    /// A new run of workflow `wf` (jobs all pass), queued at `now`.
    pub fn start_run(&mut self, wf: u64, branch: &str, sha: &str, event: &str, now: Dt) -> u64 {
        let run_number = self.runs.iter().filter(|x| x.workflow_id == wf).count() as u64 + 1;
        let id = self.runs.iter().map(|x| x.id).max().unwrap_or(9000) + 1;
        let jobs = standard_jobs(id, sha, None, Some(now));
        self.runs.push(Run {
            id,
            attempt: 1,
            jobs,
            workflow_id: wf,
            head_branch: branch.into(),
            head_sha: sha.into(),
            event: event.into(),
            run_number,
            fixed: None,
            created_at: now,
        });
        id
    }

    pub fn tree_of(&self, sha: &str) -> Arc<Tree> {
        self.commits
            .get(sha)
            .map(|c| c.tree.clone())
            .unwrap_or_default()
    }

    fn child(
        &mut self,
        parent: &str,
        changes: Vec<(String, Option<String>)>,
        msg: &str,
        who: &str,
        date: Dt,
    ) -> String {
        let tree = self.tree_of(parent);
        self.commit(
            vec![parent.to_string()],
            Some(&tree),
            changes,
            msg,
            who,
            date,
        )
    }

    pub fn open_issues(&self) -> usize {
        self.issues.values().filter(|i| i.state == "open").count()
    }
}

fn text_file(k: usize) -> String {
    (0..60)
        .map(|i| {
            let w = NOUN[(k + i) % NOUN.len()];
            if i == 0 {
                format!("f{k} line 0: marker_f{k} the quick brown fox\n")
            } else {
                format!("f{k} line {i}: the quick brown fox jumps over the lazy {w}\n")
            }
        })
        .collect()
}

fn replace_line(s: &str, n: usize, with: &str) -> String {
    s.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == n {
                format!("{with}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn seed_hello(w: &mut World) -> Repo {
    let t = base_time();
    let langs = vec![("Rust".into(), 120_000), ("Shell".into(), 3_000)];
    let mut r = new_repo(
        100_001,
        "hello",
        "Hello world project used by fakehub",
        langs,
    );
    let mut files: Vec<(String, Option<String>)> = vec![
        (
            "README.md".into(),
            Some("# hello\n\nA sample project served by fakehub.\n\n## Usage\n\n```\ncargo run\n```\n".into()),
        ),
        (
            "Cargo.toml".into(),
            Some("[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n".into()),
        ),
        (
            "src/lib.rs".into(),
            Some("pub fn greet(name: &str) -> String {\n    format!(\"Hello, {name}!\")\n}\n".into()),
        ),
        ("src/main.rs".into(), Some("fn main() {\n    println!(\"{}\", hello::greet(\"world\"));\n}\n".into())),
        (
            "docs/guide.md".into(),
            Some("# Guide\n\nInstall with cargo.\n\nConfigure the greeting.\n\nRun the binary.\n".into()),
        ),
    ];
    files.extend((1..=50).map(|k| (format!("files/f{k}.txt"), Some(text_file(k)))));
    let mut main = r.commit(
        vec![],
        None,
        files,
        "Initial commit",
        "octocat",
        t + Duration::hours(1),
    );
    let mut chain = vec![String::new(), main.clone()];
    for k in 2..=60usize {
        let f = format!("files/f{}.txt", (k - 2) % 50 + 1);
        let old = r.tree_of(&main)[&f].content.clone();
        let mut changes = vec![(
            f.clone(),
            Some(replace_line(
                &old,
                k % 60,
                &format!("changed in commit {k}"),
            )),
        )];
        let mut msg = format!("Update {f}");
        if k % 10 == 0 {
            let lib = r.tree_of(&main)["src/lib.rs"].content.clone();
            changes.push((
                "src/lib.rs".into(),
                Some(format!("{lib}\npub fn step_{k}() -> u32 {{\n    {k}\n}}\n")),
            ));
            msg = format!("Add step_{k} and update {f}");
        }
        main = r.child(
            &main,
            changes,
            &msg,
            PEOPLE[k % 3],
            t + Duration::hours(k as i64),
        );
        chain.push(main.clone());
    }
    r.branches.insert("main".into(), main);
    let guide = r.tree_of(&chain[55])["docs/guide.md"].content.clone();
    let dev = r.child(
        &chain[55],
        vec![(
            "docs/guide.md".into(),
            Some(format!("{guide}\n## Dev notes\n\nWork in progress.\n")),
        )],
        "Dev notes",
        "bob",
        t + Duration::hours(70),
    );
    r.branches.insert("dev".into(), dev);
    for k in 1..=40usize {
        let parent = chain[20 + k].clone();
        let tree = r.tree_of(&parent);
        let lib = &tree["src/lib.rs"].content;
        let f = format!("files/f{k}.txt");
        let mut changes = vec![
            (
                "src/lib.rs".to_string(),
                Some(format!(
                    "{lib}\npub fn feature_{k}() -> &'static str {{\n    \"feature {k}\"\n}}\n"
                )),
            ),
            (
                f.clone(),
                Some(replace_line(
                    &tree[&f].content,
                    5,
                    &format!("feature {k} tweak"),
                )),
            ),
        ];
        if k % 2 == 0 {
            changes.push((
                format!("features/feature_{k}.md"),
                Some(format!("# Feature {k}\n\nDescribes feature {k}.\n")),
            ));
        }
        if k == PLANTED_FEATURE {
            changes.push((
                "scripts/deploy.py".to_string(),
                Some(planted_deploy_script()),
            ));
        }
        let sha = r.child(
            &parent,
            changes,
            &format!("Implement feature {k}"),
            PEOPLE[k % 3],
            t + Duration::hours(200 + k as i64),
        );
        r.branches.insert(format!("feature-{k}"), sha);
    }
    for n in 1..=250u64 {
        let created = t + Duration::hours(300 + n as i64);
        let mut labels = Vec::new();
        if n % 5 == 0 {
            labels.push("bug".to_string());
        }
        if n % 7 == 0 {
            labels.push("docs".to_string());
        }
        let assignees = match n % 3 {
            0 => vec!["alice".to_string()],
            1 => vec!["bob".to_string()],
            _ => vec![],
        };
        let (adj, noun, area) = (
            ADJ[n as usize % 11],
            NOUN[n as usize % 13],
            AREA[n as usize % 7],
        );
        let comments = if n <= 20 {
            (1..=3)
                .map(|c| {
                    let at = created + Duration::minutes(10 * c);
                    Comment {
                        id: w.id(),
                        user: PEOPLE[(n as usize + c as usize) % 3].into(),
                        body: format!("Comment {c} on issue {n}: the {noun} still looks {adj}."),
                        created_at: at,
                        updated_at: at,
                    }
                })
                .collect()
        } else {
            vec![]
        };
        let closed = n % 10 == 0;
        let closed_at = closed.then(|| created + Duration::hours(2));
        let issue = Issue {
            number: n,
            id: w.id(),
            title: format!("Issue {n}: {adj} {noun} in {area}"),
            body: Some(format!(
                "The {noun} is {adj} during {area}. Seen in build {n}.\n\nSteps to reproduce:\n1. run hello\n2. watch the {noun}\n"
            )),
            state: if closed { "closed" } else { "open" }.into(),
            state_reason: closed.then(|| "completed".to_string()),
            user: PEOPLE[n as usize % 3].into(),
            labels,
            assignees,
            comments,
            created_at: created,
            updated_at: closed_at.unwrap_or(created + Duration::minutes(45)),
            closed_at,
            pull: None,
        };
        r.issues.insert(n, issue);
    }
    for k in 1..=40u64 {
        let n = 250 + k;
        let created = t + Duration::hours(600 + k as i64);
        let head = format!("feature-{k}");
        let closed = k % 10 == 0;
        let closed_at = closed.then(|| created + Duration::hours(3));
        let pull = Pull {
            id: w.id(),
            head_sha: r.branches[&head].clone(),
            head,
            base: "main".into(),
            merged_at: None,
            merge_commit_sha: None,
            merged_base: None,
            draft: k == 7,
            reviews: Default::default(),
        };
        let issue = Issue {
            number: n,
            id: w.id(),
            title: format!(
                "Add feature {k}: {} {}",
                ADJ[k as usize % 11],
                NOUN[k as usize % 13]
            ),
            body: Some(format!("Implements feature {k}.\n\nCloses #{k}.\n")),
            state: if closed { "closed" } else { "open" }.into(),
            state_reason: None,
            user: PEOPLE[k as usize % 3].into(),
            labels: if k % 4 == 0 {
                vec!["enhancement".into()]
            } else {
                vec![]
            },
            assignees: if k % 3 == 0 {
                vec!["alice".into()]
            } else {
                vec![]
            },
            comments: vec![],
            created_at: created,
            updated_at: closed_at.unwrap_or(created + Duration::minutes(30)),
            closed_at,
            pull: Some(pull),
        };
        r.issues.insert(n, issue);
    }
    r.workflows
        .push((1001, "CI".into(), ".github/workflows/ci.yml".into()));
    for i in 0..5u64 {
        let sha = chain[56 + i as usize].clone();
        let conclusion = if i == 2 { "failure" } else { "success" };
        let failing = (i == 2).then_some("test");
        r.runs.push(Run {
            id: 9001 + i,
            attempt: 1,
            jobs: standard_jobs(9001 + i, &sha, failing, None),
            workflow_id: 1001,
            head_branch: "main".into(),
            head_sha: sha,
            event: "push".into(),
            run_number: 1 + i,
            fixed: Some(("completed".into(), Some(conclusion.into()))),
            created_at: t + Duration::hours(56 + i as i64) + Duration::minutes(5),
        });
    }
    // Commit statuses from outside GitHub Actions: the failing commit's coverage failed
    // too; the head has a pending preview deployment.
    let status = |id: u64, state: &str, context: &str, description: &str, at: Dt| Status {
        id,
        state: state.into(),
        context: context.into(),
        description: description.into(),
        created_at: at,
    };
    let at = |k: usize| t + Duration::hours(k as i64) + Duration::minutes(20);
    r.statuses.insert(
        chain[58].clone(),
        vec![status(
            7001,
            "failure",
            "ci/coverage",
            "Coverage fell to 61%",
            at(58),
        )],
    );
    r.statuses.insert(
        chain[60].clone(),
        vec![
            status(7002, "success", "ci/coverage", "Coverage 84%", at(60)),
            status(
                7003,
                "pending",
                "deploy/preview",
                "Deploying preview",
                at(60),
            ),
        ],
    );
    crate::releases::seed_hello(&mut r, &chain, t);
    r
}

/// The jobs of a CI run: build, test, lint; `failing` names the one that fails.
pub fn standard_jobs(run_id: u64, sha: &str, failing: Option<&str>, since: Option<Dt>) -> Vec<Job> {
    [
        ("build", "cargo build --locked"),
        ("test", "cargo test --locked"),
        ("lint", "cargo clippy -- -D warnings"),
    ]
    .into_iter()
    .enumerate()
    .map(|(k, (name, cmd))| {
        let fails = failing == Some(name);
        Job {
            id: run_id * 10 + 1 + k as u64,
            name: name.into(),
            outcome: if fails { "failure" } else { "success" }.into(),
            steps: vec![
                "Set up job".into(),
                "Run actions/checkout@v4".into(),
                format!("Run {cmd}"),
                "Complete job".into(),
            ],
            since,
            cancelled: false,
            log: job_log(name, cmd, sha, fails),
        }
    })
    .collect()
}

/// A job log as GitHub serves it: each line starts with an RFC 3339 timestamp (7
/// fractional digits), tool output keeps its ANSI colours. A failing test job names
/// `src/lib.rs` and `src/main.rs` in its error.
pub fn job_log(name: &str, cmd: &str, sha: &str, fails: bool) -> String {
    let t0 = base_time() + Duration::days(3);
    let mut lines: Vec<String> = vec![
        "##[group]Runner Image".into(),
        "Image: ubuntu-22.04".into(),
        "##[endgroup]".into(),
        format!("Job {name} for commit {}", &sha[..7.min(sha.len())]),
        "##[group]Run actions/checkout@v4".into(),
        format!("Syncing repository: octo/hello at {sha}"),
        "##[endgroup]".into(),
        format!("##[group]Run {cmd}"),
    ];
    for k in 1..=120 {
        lines.push(format!(
            "\u{1b}[1m\u{1b}[32m   Compiling\u{1b}[0m dep-{k} v0.{k}.0"
        ));
    }
    if name == "test" {
        lines.push("running 12 tests".into());
        for k in 1..=11 {
            lines.push(format!("test tests::case_{k} ... \u{1b}[32mok\u{1b}[0m"));
        }
        if fails {
            lines.extend([
                "test tests::greets ... \u{1b}[31mFAILED\u{1b}[0m".to_string(),
                String::new(),
                "failures:".into(),
                String::new(),
                "---- tests::greets stdout ----".into(),
                "thread 'tests::greets' panicked at src/lib.rs:2:5:".into(),
                "assertion `left == right` failed: greet(\"world\") must match the banner printed by src/main.rs:2".into(),
                "  left: \"Hello, world!\"".into(),
                " right: \"Hello, World!\"".into(),
                String::new(),
                "test result: \u{1b}[31mFAILED\u{1b}[0m. 11 passed; 1 failed; 0 ignored".into(),
                "\u{1b}[31m##[error]\u{1b}[0mProcess completed with exit code 101.".into(),
            ]);
        } else {
            lines.push("test tests::greets ... \u{1b}[32mok\u{1b}[0m".into());
            lines.push("test result: \u{1b}[32mok\u{1b}[0m. 12 passed; 0 failed; 0 ignored".into());
        }
    } else {
        lines.push(format!(
            "\u{1b}[1m\u{1b}[32m    Finished\u{1b}[0m `{name}` profile in 4.2s"
        ));
    }
    lines.push("##[endgroup]".into());
    lines.push("Cleaning up orphan processes".into());
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at = t0 + Duration::milliseconds(137 * i as i64);
            format!(
                "{}.{:07}Z {l}\n",
                at.format("%Y-%m-%dT%H:%M:%S"),
                at.timestamp_subsec_nanos() / 100
            )
        })
        .collect()
}

fn seed_tools(w: &mut World) -> Repo {
    let t = base_time();
    let langs = vec![("Python".into(), 5_000), ("Shell".into(), 800)];
    let mut r = new_repo(
        100_002,
        "tools",
        "Assorted helper tools: deploy and backup scripts",
        langs,
    );
    let files = vec![
        ("README.md".to_string(), Some("# tools\n\nHelper scripts: deploy, backup.\n".to_string())),
        (
            "src/main.py".to_string(),
            Some("def deploy():\n    print(\"deploying\")\n\n\ndef backup():\n    print(\"backing up\")\n".to_string()),
        ),
    ];
    let c = r.commit(
        vec![],
        None,
        files,
        "Initial tools",
        "alice",
        t + Duration::hours(2),
    );
    r.branches.insert("main".into(), c);
    for n in 1..=5u64 {
        let created = t + Duration::hours(400 + n as i64);
        let noun = NOUN[n as usize];
        r.issues.insert(
            n,
            Issue {
                number: n,
                id: w.id(),
                title: format!("Tool issue {n}: {} {noun} in deploy", ADJ[n as usize]),
                body: Some(format!("The deploy {noun} misbehaves ({n}).")),
                state: "open".into(),
                state_reason: None,
                user: "bob".into(),
                labels: if n % 2 == 1 {
                    vec!["bug".into()]
                } else {
                    vec![]
                },
                assignees: if n == 1 { vec!["alice".into()] } else { vec![] },
                comments: vec![],
                created_at: created,
                updated_at: created,
                closed_at: None,
                pull: None,
            },
        );
    }
    r
}

// ---------------------------------------------------------------- renderers

pub fn repo_json(a: &str, r: &Repo) -> Value {
    let full = r.full();
    let mut v = json!({
        "id": r.id, "node_id": format!("R_kgDO{:06}", r.id), "name": r.name, "full_name": full,
        "private": false, "visibility": "public", "owner": user_json(a, &r.owner),
        "html_url": format!("{WEB}/{full}"), "description": r.description, "fork": false,
        "url": format!("{a}/repos/{full}"), "clone_url": format!("{WEB}/{full}.git"),
        "created_at": ts(&r.created_at), "updated_at": ts(&r.updated_at), "pushed_at": ts(&r.pushed_at),
        "homepage": null, "size": 1024, "stargazers_count": r.stars, "watchers_count": r.stars,
        "language": r.languages.first().map(|l| l.0.clone()), "forks_count": r.forks, "forks": r.forks,
        "open_issues_count": r.open_issues(), "open_issues": r.open_issues(), "watchers": r.stars,
        "topics": r.topics, "default_branch": r.default_branch, "archived": false, "disabled": false,
        "has_issues": true, "has_projects": true, "has_wiki": false,
        "license": {"key": "mit", "name": "MIT License", "spdx_id": "MIT", "url": format!("{a}/licenses/mit"), "node_id": "MDc6TGljZW5zZTEz"},
        "permissions": {"admin": true, "maintain": true, "push": true, "triage": true, "pull": true},
    });
    for (key, allowed) in [
        "allow_merge_commit",
        "allow_squash_merge",
        "allow_rebase_merge",
    ]
    .into_iter()
    .zip(r.merge_methods)
    {
        v[key] = json!(allowed);
    }
    v
}

pub fn label_json(a: &str, r: &Repo, name: &str) -> Value {
    let (id, color, desc) = r.labels.get(name).map_or((0, "ededed", ""), |l| {
        (l.id, l.color.as_str(), l.description.as_str())
    });
    json!({"id": id, "node_id": format!("LA_kwDO{id:08}"), "url": format!("{a}/repos/{}/labels/{name}", r.full()),
           "name": name, "color": color, "default": name == "bug", "description": desc})
}

fn people(a: &str, v: &[String]) -> Value {
    Value::Array(v.iter().map(|l| user_json(a, l)).collect())
}

pub fn issue_json(a: &str, r: &Repo, i: &Issue) -> Value {
    let full = r.full();
    let n = i.number;
    let kind = if i.pull.is_some() { "pull" } else { "issues" };
    let mut v = json!({
        "url": format!("{a}/repos/{full}/issues/{n}"), "repository_url": format!("{a}/repos/{full}"),
        "labels_url": format!("{a}/repos/{full}/issues/{n}/labels{{/name}}"),
        "comments_url": format!("{a}/repos/{full}/issues/{n}/comments"),
        "events_url": format!("{a}/repos/{full}/issues/{n}/events"),
        "html_url": format!("{WEB}/{full}/{kind}/{n}"), "id": i.id, "node_id": format!("I_kwDO{:08}", i.id),
        "number": n, "title": i.title, "user": user_json(a, &i.user),
        "labels": i.labels.iter().map(|l| label_json(a, r, l)).collect::<Vec<_>>(),
        "state": i.state, "state_reason": i.state_reason, "locked": false,
        "assignee": i.assignees.first().map(|l| user_json(a, l)), "assignees": people(a, &i.assignees),
        "milestone": null, "comments": i.comments.len(), "created_at": ts(&i.created_at),
        "updated_at": ts(&i.updated_at), "closed_at": opt_ts(&i.closed_at),
        "author_association": if i.user == "octocat" { "OWNER" } else { "CONTRIBUTOR" },
        "active_lock_reason": null, "body": i.body,
    });
    if let Some(p) = &i.pull {
        v["pull_request"] = json!({
            "url": format!("{a}/repos/{full}/pulls/{n}"), "html_url": format!("{WEB}/{full}/pull/{n}"),
            "diff_url": format!("{WEB}/{full}/pull/{n}.diff"), "patch_url": format!("{WEB}/{full}/pull/{n}.patch"),
            "merged_at": opt_ts(&p.merged_at),
        });
    }
    v
}

/// Head sha of a pull: the live branch if it still exists.
pub fn pull_head(r: &Repo, p: &Pull) -> String {
    r.branches
        .get(&p.head)
        .cloned()
        .unwrap_or_else(|| p.head_sha.clone())
}

/// (merge base, head) of a pull's diff.
pub fn pull_range(r: &Repo, p: &Pull) -> (String, String) {
    let head = pull_head(r, p);
    let base = match &p.merged_base {
        Some(b) => b.clone(),
        None => {
            let b = r.branches.get(&p.base).cloned().unwrap_or_default();
            git::merge_base(r, &b, &head).unwrap_or(b)
        }
    };
    (base, head)
}

/// The feature branch (pull request 250 + k) whose change plants a credential and a
/// shell-injection call in `scripts/deploy.py`, for review tests.
pub const PLANTED_FEATURE: usize = 39;

/// A deploy script with a fake AWS key id and `shell=True` (built at run time so the
/// source holds no credential-shaped literal).
pub fn planted_deploy_script() -> String {
    let key = format!("AKIA{}", "FAKEHUBPLANTED01");
    format!(
        "import subprocess\n\nAWS_ACCESS_KEY_ID = \"{key}\"\n\n\ndef deploy(cmd):\n    subprocess.run(cmd, shell=True)\n"
    )
}

pub fn pull_files(r: &Repo, p: &Pull) -> Vec<FileDiff> {
    let (base, head) = pull_range(r, p);
    git::diff_trees(&r.tree_of(&base), &r.tree_of(&head))
}

/// The stable GraphQL id of a pull request (`node_id` in REST answers).
pub fn pull_node_id(p: &Pull) -> String {
    format!("PR_kwDO{:08}", p.id)
}

pub fn pull_json(a: &str, r: &Repo, i: &Issue, detailed: bool) -> Value {
    let p = i.pull.as_ref().expect("pull");
    let full = r.full();
    let n = i.number;
    let head = pull_head(r, p);
    let base_sha = r.branches.get(&p.base).cloned().unwrap_or_default();
    let side = |branch: &str, sha: &str| {
        json!({"label": format!("{}:{branch}", r.owner), "ref": branch, "sha": sha,
               "user": user_json(a, &r.owner), "repo": repo_json(a, r)})
    };
    let mut v = json!({
        "url": format!("{a}/repos/{full}/pulls/{n}"), "id": p.id, "node_id": pull_node_id(p),
        "html_url": format!("{WEB}/{full}/pull/{n}"), "diff_url": format!("{WEB}/{full}/pull/{n}.diff"),
        "patch_url": format!("{WEB}/{full}/pull/{n}.patch"), "issue_url": format!("{a}/repos/{full}/issues/{n}"),
        "commits_url": format!("{a}/repos/{full}/pulls/{n}/commits"),
        "number": n, "state": i.state, "locked": false, "title": i.title, "user": user_json(a, &i.user),
        "body": i.body, "labels": i.labels.iter().map(|l| label_json(a, r, l)).collect::<Vec<_>>(),
        "milestone": null, "assignee": i.assignees.first().map(|l| user_json(a, l)),
        "assignees": people(a, &i.assignees), "requested_reviewers": [], "draft": p.draft,
        "created_at": ts(&i.created_at), "updated_at": ts(&i.updated_at), "closed_at": opt_ts(&i.closed_at),
        "merged_at": opt_ts(&p.merged_at), "merge_commit_sha": p.merge_commit_sha,
        "head": side(&p.head, &head), "base": side(&p.base, &base_sha),
        "author_association": if i.user == "octocat" { "OWNER" } else { "CONTRIBUTOR" },
    });
    if detailed {
        let files = pull_files(r, p);
        let (base, head) = pull_range(r, p);
        let commits = git::range(r, &base, &head).len();
        v["merged"] = json!(p.merged_at.is_some());
        v["mergeable"] = json!(i.state == "open");
        v["mergeable_state"] = json!(if i.state == "open" {
            "clean"
        } else {
            "unknown"
        });
        v["comments"] = json!(i.comments.len());
        v["review_comments"] = json!(0);
        v["commits"] = json!(commits);
        v["additions"] = json!(files.iter().map(|f| f.additions).sum::<usize>());
        v["deletions"] = json!(files.iter().map(|f| f.deletions).sum::<usize>());
        v["changed_files"] = json!(files.len());
    }
    crate::reviews::pull_fields(a, &p.reviews, &mut v);
    v
}

pub fn comment_json(a: &str, r: &Repo, n: u64, c: &Comment) -> Value {
    let full = r.full();
    json!({"id": c.id, "node_id": format!("IC_kwDO{:08}", c.id), "url": format!("{a}/repos/{full}/issues/comments/{}", c.id),
           "html_url": format!("{WEB}/{full}/issues/{n}#issuecomment-{}", c.id), "issue_url": format!("{a}/repos/{full}/issues/{n}"),
           "user": user_json(a, &c.user), "created_at": ts(&c.created_at), "updated_at": ts(&c.updated_at),
           "author_association": "CONTRIBUTOR", "body": c.body})
}

pub fn file_json(a: &str, r: &Repo, f: &FileDiff) -> Value {
    let full = r.full();
    json!({"sha": f.sha, "filename": f.filename, "status": f.status, "additions": f.additions,
           "deletions": f.deletions, "changes": f.additions + f.deletions, "patch": f.patch,
           "blob_url": format!("{WEB}/{full}/blob/{}/{}", f.sha, f.filename),
           "raw_url": format!("{WEB}/{full}/raw/{}/{}", f.sha, f.filename),
           "contents_url": format!("{a}/repos/{full}/contents/{}", f.filename)})
}

pub fn commit_json(a: &str, r: &Repo, c: &Commit, files: Option<&[FileDiff]>) -> Value {
    let full = r.full();
    let who = json!({"name": c.author, "email": format!("{}@example.com", c.author), "date": ts(&c.date)});
    let mut v = json!({
        "sha": c.sha, "node_id": format!("C_kwDO{}", &c.sha[..12]),
        "url": format!("{a}/repos/{full}/commits/{}", c.sha), "html_url": format!("{WEB}/{full}/commit/{}", c.sha),
        "commit": {"message": c.message, "author": who, "committer": who, "comment_count": 0,
                   "tree": {"sha": tree_sha(&c.tree), "url": format!("{a}/repos/{full}/git/trees/{}", tree_sha(&c.tree))},
                   "url": format!("{a}/repos/{full}/git/commits/{}", c.sha)},
        "author": user_json(a, &c.author), "committer": user_json(a, &c.author),
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{a}/repos/{full}/commits/{p}"), "html_url": format!("{WEB}/{full}/commit/{p}")})).collect::<Vec<_>>(),
    });
    if let Some(files) = files {
        let (ad, de) = files
            .iter()
            .fold((0, 0), |(x, y), f| (x + f.additions, y + f.deletions));
        v["stats"] = json!({"total": ad + de, "additions": ad, "deletions": de});
        v["files"] = Value::Array(files.iter().map(|f| file_json(a, r, f)).collect());
    }
    v
}

/// A commit in the Git Data API shape (`/git/commits/{sha}`).
pub fn git_commit_json(a: &str, r: &Repo, c: &Commit) -> Value {
    let full = r.full();
    let who = json!({"name": c.author, "email": format!("{}@example.com", c.author), "date": ts(&c.date)});
    let tree = tree_sha(&c.tree);
    json!({"sha": c.sha, "node_id": format!("C_kwDO{}", &c.sha[..12]),
           "url": format!("{a}/repos/{full}/git/commits/{}", c.sha), "html_url": format!("{WEB}/{full}/commit/{}", c.sha),
           "author": who, "committer": who, "message": c.message,
           "tree": {"sha": tree, "url": format!("{a}/repos/{full}/git/trees/{tree}")},
           "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{a}/repos/{full}/git/commits/{p}"), "html_url": format!("{WEB}/{full}/commit/{p}")})).collect::<Vec<_>>(),
           "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null}})
}

/// A tree in the Git Data API shape: every blob with its full path (trees are flat
/// here, so `recursive` listings and top-level ones show the same blobs).
pub fn tree_json(a: &str, r: &Repo, tree: &Tree) -> Value {
    let full = r.full();
    let sha = tree_sha(tree);
    let entries: Vec<Value> = tree
        .iter()
        .map(|(p, b)| json!({"path": p, "mode": "100644", "type": "blob", "sha": b.sha, "size": b.content.len(),
                             "url": format!("{a}/repos/{full}/git/blobs/{}", b.sha)}))
        .collect();
    json!({"sha": sha, "url": format!("{a}/repos/{full}/git/trees/{sha}"), "tree": entries, "truncated": false})
}

pub fn branch_json(a: &str, r: &Repo, name: &str, sha: &str) -> Value {
    json!({"name": name, "commit": {"sha": sha, "url": format!("{a}/repos/{}/commits/{sha}", r.full())},
           "protected": name == r.default_branch})
}

pub fn ref_json(a: &str, r: &Repo, name: &str, sha: &str) -> Value {
    let full = r.full();
    json!({"ref": format!("refs/heads/{name}"), "node_id": format!("REF_kwDO{}", &fake_sha(name)[..12]),
           "url": format!("{a}/repos/{full}/git/refs/heads/{name}"),
           "object": {"sha": sha, "type": "commit", "url": format!("{a}/repos/{full}/git/commits/{sha}")}})
}

fn by_age(since: Dt, now: Dt, outcome: &str) -> (String, Option<String>) {
    match (now - since).num_seconds() {
        ..5 => ("queued".into(), None),
        5..15 => ("in_progress".into(), None),
        _ => ("completed".into(), Some(outcome.to_string())),
    }
}

/// (status, conclusion) of a job at `now`.
pub fn job_state(job: &Job, now: Dt) -> (String, Option<String>) {
    if job.cancelled {
        return ("completed".into(), Some("cancelled".into()));
    }
    match job.since {
        Some(since) => by_age(since, now, &job.outcome),
        None => ("completed".into(), Some(job.outcome.clone())),
    }
}

/// (status, conclusion) of a run at `now`: from its jobs (any cancelled → cancelled,
/// any failed → failure), or fixed / by age for a run without jobs.
pub fn run_state(run: &Run, now: Dt) -> (String, Option<String>) {
    if run.jobs.is_empty() {
        if let Some((s, c)) = &run.fixed {
            return (s.clone(), c.clone());
        }
        return by_age(run.created_at, now, "success");
    }
    let states: Vec<_> = run.jobs.iter().map(|j| job_state(j, now)).collect();
    if states.iter().all(|(s, _)| s == "completed") {
        let has = |c: &str| states.iter().any(|(_, x)| x.as_deref() == Some(c));
        let conclusion = if has("cancelled") {
            "cancelled"
        } else if has("failure") {
            "failure"
        } else {
            "success"
        };
        return ("completed".into(), Some(conclusion.into()));
    }
    if states.iter().all(|(s, _)| s == "queued") {
        return ("queued".into(), None);
    }
    ("in_progress".into(), None)
}

/// When a job (re)started: its `since`, else shortly after the run was created.
fn job_started(run: &Run, job: &Job) -> Dt {
    job.since.unwrap_or(run.created_at + Duration::seconds(3))
}

pub fn job_json(a: &str, r: &Repo, run: &Run, job: &Job, now: Dt) -> Value {
    let full = r.full();
    let (status, conclusion) = job_state(job, now);
    let started = job_started(run, job);
    let done = status == "completed";
    let completed = done.then(|| started + Duration::seconds(12));
    let failed_at = (job.outcome == "failure").then_some(2usize);
    let steps: Vec<Value> = job
        .steps
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let (st, co) = if !done {
                if k == 0 && status == "in_progress" {
                    ("in_progress", None)
                } else {
                    ("queued", None)
                }
            } else if job.cancelled {
                ("completed", Some("cancelled"))
            } else {
                match failed_at {
                    Some(f) if k == f => ("completed", Some("failure")),
                    Some(f) if k > f && k + 1 < job.steps.len() => ("completed", Some("skipped")),
                    _ => ("completed", Some("success")),
                }
            };
            json!({"name": name, "status": st, "conclusion": co, "number": k + 1,
                   "started_at": done.then(|| ts(&(started + Duration::seconds(3 * k as i64)))),
                   "completed_at": done.then(|| ts(&(started + Duration::seconds(3 * k as i64 + 2))))})
        })
        .collect();
    json!({"id": job.id, "run_id": run.id, "run_attempt": run.attempt, "node_id": format!("CR_kwDO{:08}", job.id),
           "head_sha": run.head_sha, "head_branch": run.head_branch, "workflow_name": "CI",
           "url": format!("{a}/repos/{full}/actions/jobs/{}", job.id),
           "html_url": format!("{WEB}/{full}/actions/runs/{}/job/{}", run.id, job.id),
           "run_url": format!("{a}/repos/{full}/actions/runs/{}", run.id),
           "check_run_url": format!("{a}/repos/{full}/check-runs/{}", job.id),
           "status": status, "conclusion": conclusion, "name": job.name,
           "created_at": ts(&started), "started_at": ts(&started), "completed_at": opt_ts(&completed),
           "steps": steps, "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
           "runner_group_id": 1, "runner_group_name": "GitHub Actions"})
}

/// A GitHub Actions job seen as a check run (same id, as on GitHub).
pub fn check_run_json(a: &str, r: &Repo, run: &Run, job: &Job, now: Dt) -> Value {
    let full = r.full();
    let (status, conclusion) = job_state(job, now);
    let started = job_started(run, job);
    let completed = (status == "completed").then(|| started + Duration::seconds(12));
    let title = match conclusion.as_deref() {
        Some("failure") => "Process completed with exit code 101.",
        Some(_) => "",
        None => "In progress",
    };
    json!({"id": job.id, "name": job.name, "node_id": format!("CR_kwDO{:08}", job.id), "head_sha": run.head_sha,
           "external_id": format!("{}-{}", run.id, job.id),
           "url": format!("{a}/repos/{full}/check-runs/{}", job.id),
           "html_url": format!("{WEB}/{full}/actions/runs/{}/job/{}", run.id, job.id),
           "details_url": format!("{WEB}/{full}/actions/runs/{}/job/{}", run.id, job.id),
           "status": status, "conclusion": conclusion, "started_at": ts(&started), "completed_at": opt_ts(&completed),
           "output": {"title": title, "summary": "", "text": null, "annotations_count": 0},
           "check_suite": {"id": run.id * 7},
           "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
           "pull_requests": []})
}

pub fn status_json(a: &str, r: &Repo, sha: &str, st: &Status) -> Value {
    json!({"id": st.id, "node_id": format!("SC_kwDO{:08}", st.id), "state": st.state, "context": st.context,
           "description": st.description, "target_url": format!("{WEB}/{}/statuses/{}", r.full(), st.context),
           "url": format!("{a}/repos/{}/statuses/{sha}", r.full()), "avatar_url": null,
           "created_at": ts(&st.created_at), "updated_at": ts(&st.created_at), "creator": user_json(a, "octocat")})
}

/// Artifacts of a completed run: a test report, and failure logs when it failed.
pub fn artifacts_json(a: &str, r: &Repo, run: &Run, now: Dt) -> Vec<Value> {
    let (status, conclusion) = run_state(run, now);
    if status != "completed" {
        return vec![];
    }
    let full = r.full();
    let mut names = vec![("test-report", 18_432u64)];
    if conclusion.as_deref() == Some("failure") {
        names.push(("failure-logs", 5_120));
    }
    names
        .into_iter()
        .enumerate()
        .map(|(k, (name, size))| {
            let id = run.id * 100 + k as u64 + 1;
            let created = run.created_at + Duration::seconds(20);
            json!({"id": id, "node_id": format!("MDg6QXJ0aWZhY3Q{id}"), "name": name, "size_in_bytes": size,
                   "url": format!("{a}/repos/{full}/actions/artifacts/{id}"),
                   "archive_download_url": format!("{a}/repos/{full}/actions/artifacts/{id}/zip"),
                   "expired": false, "digest": format!("sha256:{}", fake_sha(name)),
                   "created_at": ts(&created), "updated_at": ts(&created), "expires_at": ts(&(created + Duration::days(90))),
                   "workflow_run": {"id": run.id, "head_branch": run.head_branch, "head_sha": run.head_sha}})
        })
        .collect()
}

pub fn run_json(a: &str, r: &Repo, run: &Run, now: Dt) -> Value {
    let full = r.full();
    let (status, conclusion) = run_state(run, now);
    let (name, path) = r
        .workflows
        .iter()
        .find(|w| w.0 == run.workflow_id)
        .map_or(("CI".to_string(), String::new()), |w| {
            (w.1.clone(), w.2.clone())
        });
    let started = run
        .jobs
        .iter()
        .filter_map(|j| j.since)
        .max()
        .unwrap_or(run.created_at);
    let updated = if status == "completed" && run.fixed.is_none() {
        started + Duration::seconds(15)
    } else {
        started
    };
    json!({"id": run.id, "name": name, "node_id": format!("WFR_kwLO{:08}", run.id), "head_branch": run.head_branch,
           "head_sha": run.head_sha, "path": path, "display_title": name, "run_number": run.run_number, "run_attempt": run.attempt,
           "event": run.event, "status": status, "conclusion": conclusion, "workflow_id": run.workflow_id,
           "url": format!("{a}/repos/{full}/actions/runs/{}", run.id), "html_url": format!("{WEB}/{full}/actions/runs/{}", run.id),
           "jobs_url": format!("{a}/repos/{full}/actions/runs/{}/jobs", run.id),
           "logs_url": format!("{a}/repos/{full}/actions/runs/{}/logs", run.id),
           "created_at": ts(&run.created_at), "updated_at": ts(&updated), "run_started_at": ts(&started),
           "actor": user_json(a, "octocat"), "repository": {"id": r.id, "full_name": full}})
}

pub fn workflow_json(a: &str, r: &Repo, w: &(u64, String, String)) -> Value {
    let full = r.full();
    json!({"id": w.0, "node_id": format!("W_kwDO{:08}", w.0), "name": w.1, "path": w.2, "state": "active",
           "created_at": ts(&r.created_at), "updated_at": ts(&r.created_at),
           "url": format!("{a}/repos/{full}/actions/workflows/{}", w.0),
           "html_url": format!("{WEB}/{full}/blob/main/{}", w.2),
           "badge_url": format!("{WEB}/{full}/workflows/{}/badge.svg", w.1)})
}

/// GitHub-style base64: 60 characters per line, each followed by `\n`.
pub fn b64_lines(content: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(content);
    let mut out = String::with_capacity(enc.len() + enc.len() / 60 + 1);
    for chunk in enc.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out
}

pub fn content_entry(
    a: &str,
    r: &Repo,
    path: &str,
    git_ref: &str,
    blob: Option<&Blob>,
    with_content: bool,
) -> Value {
    let full = r.full();
    let name = path.rsplit('/').next().unwrap_or(path);
    let (kind, sha, size) = match blob {
        Some(b) => ("file", b.sha.clone(), b.content.len()),
        None => ("dir", fake_sha(&format!("dir {git_ref} {path}")), 0),
    };
    let tree_or_blob = if blob.is_some() { "blob" } else { "tree" };
    let mut v = json!({
        "type": kind, "name": name, "path": path, "sha": sha, "size": size,
        "url": format!("{a}/repos/{full}/contents/{path}?ref={git_ref}"),
        "html_url": format!("{WEB}/{full}/{tree_or_blob}/{git_ref}/{path}"),
        "git_url": format!("{a}/repos/{full}/git/{tree_or_blob}s/{sha}"),
        "download_url": blob.map(|_| format!("{}/raw/{full}/{git_ref}/{path}", a.trim_end_matches("/api/v3"))),
    });
    if let (true, Some(b)) = (with_content, blob) {
        v["encoding"] = json!("base64");
        v["content"] = json!(b64_lines(b.content.as_bytes()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_shape() {
        let w = World::seed();
        let r = &w.repos[w.repo_index("octo", "hello").unwrap()];
        assert_eq!(r.branches.len(), 42);
        assert_eq!(r.issues.len(), 290);
        let main = r.branches["main"].clone();
        assert_eq!(git::log(r, &main).len(), 60);
        assert_eq!(r.tree_of(&main).len(), 55);
        let p = r.issues[&252].pull.as_ref().unwrap();
        let files = pull_files(r, p);
        assert_eq!(files.len(), 3);
        assert!(files.iter().any(|f| f.status == "added"));
    }

    #[test]
    fn base64_lines() {
        let s = b64_lines(&[7u8; 100]);
        assert!(s.lines().all(|l| l.len() <= 60));
        assert!(s.ends_with('\n'));
        assert_eq!(s.lines().count(), 3);
    }
}

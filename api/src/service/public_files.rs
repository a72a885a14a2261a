//! The public list as downloadable files (`GET /exports/public-list.csv|.xlsx|.jsonl`),
//! rendered once per version of the list and per format, then served from that file to
//! everyone who asks for the same version.
//!
//! Why: the list is public and anyone may download it. Rendering it per request made
//! every download of a million listings cost PostgreSQL a full walk of the list (and each
//! conditional request a full count), so a handful of mirrors polling it could take the
//! database from the partners' checks. Now a download costs a read of a file, and a
//! change of the list costs one render per format, whoever asks first; concurrent first
//! askers wait for that one render.
//!
//! - **One snapshot.** A render reads the version (its `ETag`) and the rows in one
//!   read-only transaction (REPEATABLE READ on PostgreSQL; a read transaction of SQLite's
//!   WAL is a snapshot too), so the file is exactly the list its `ETag` names, even if a
//!   listing is decided while it is being written.
//! - **Bounded memory.** Rows go a page at a time into an unnamed temporary file; the
//!   file is read back in slices for each client, and the `.jsonl`'s signature is
//!   computed from the file in two streaming passes (Ed25519 reads its message twice),
//!   so no step holds the document in memory.
//! - **The version, cheaply.** Which version is current rests on the newest change to
//!   what the list shows (the newest audit event of a listing, an operator, a list or a
//!   measure: one read along the primary key per request; an operator's rename changes
//!   the file as much as a listing's revision does) and the number of listings in force
//!   (a count over the list, which an expiry changes before the expiry job records it).
//!   The count is reused for [`VERSION_TTL`] while the newest change stays the same:
//!   an expiry shows in the `ETag` at most that much later, well inside the
//!   `Cache-Control: max-age` the files are served with anyway. A new change is counted
//!   once, whoever asks (single flight: the others wait for that count and take it),
//!   on the pool the caller names (the anonymous pool for downloads), so that a burst of
//!   changes (an import commits one a chunk) under many downloaders does not run a count
//!   per request on the connections checks use.

use super::export::{self, ExportFilter, ExportKind, PublicVersion};
use crate::bulk::write::{OutputFormat, Sink};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, SignatureError, SigningKey};
use sea_orm::{AccessMode, DatabaseConnection, DbBackend, IsolationLevel, TransactionTrait};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a counted version is reused while nothing the list shows changes.
pub const VERSION_TTL: Duration = Duration::from_secs(30);

/// Bytes read from a rendered file at a time (for a client, for a hash pass).
pub const SLICE_BYTES: usize = 256 * 1024;

/// The `ETag` of a version of the public list.
pub fn etag_of(v: &PublicVersion) -> String {
    format!("\"public-list-{}-{}\"", v.change_id, v.in_force)
}

/// The `Last-Modified` of a version (HTTP date), when anything was ever recorded.
pub fn last_modified_of(v: &PublicVersion) -> Option<String> {
    v.recorded_at
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// One rendered file of one version.
pub struct Rendered {
    pub version: PublicVersion,
    pub format: OutputFormat,
    file: std::fs::File,
    pub len: u64,
    signature: tokio::sync::OnceCell<Signed>,
}

/// The `.jsonl`'s detached signature, with what it signed.
#[derive(Clone, Debug)]
pub struct Signed {
    pub kid: String,
    pub signature: Signature,
    pub sha256: [u8; 32],
}

impl Rendered {
    pub fn etag(&self) -> String {
        etag_of(&self.version)
    }

    /// Up to `buf.len()` bytes at `offset` (0 at the end). Positional reads: every
    /// client reads the one file at its own offset.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    /// Feeds the whole file to `f`, a slice at a time.
    fn each_slice(&self, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
        let mut buf = vec![0u8; SLICE_BYTES];
        let mut offset = 0u64;
        loop {
            let n = self.read_at(&mut buf, offset)?;
            if n == 0 {
                return Ok(());
            }
            f(&buf[..n]);
            offset += n as u64;
        }
    }

    /// The pure Ed25519 signature of the file's bytes by `key` (named `kid`), and their
    /// SHA-256; computed once per rendered file. A verifier checks it against the bytes
    /// as downloaded, with any Ed25519 library.
    pub async fn signature(self: &Arc<Self>, kid: &str, key: &SigningKey) -> AppResult<Signed> {
        let this = Arc::clone(self);
        let kid = kid.to_string();
        let key = key.clone();
        self.signature
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || this.sign(&kid, &key))
                    .await
                    .map_err(AppError::internal)?
            })
            .await
            .cloned()
    }

    fn sign(&self, kid: &str, key: &SigningKey) -> AppResult<Signed> {
        use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign_byupdate};
        use sha2::Digest;
        // The expanded key is derived from the signing key's own seed and paired with its
        // own verifying key: exactly what `SigningKey::sign` does, with the message fed in
        // slices instead of one buffer.
        let expanded = ExpandedSecretKey::from(&key.to_bytes());
        let signature = raw_sign_byupdate::<sha2::Sha512, _>(
            &expanded,
            |digest| {
                self.each_slice(|s| digest.update(s))
                    .map_err(SignatureError::from_source)
            },
            &key.verifying_key(),
        )
        .map_err(AppError::internal)?;
        let mut sha = sha2::Sha256::new();
        self.each_slice(|s| sha.update(s))
            .map_err(AppError::internal)?;
        Ok(Signed {
            kid: kid.to_string(),
            signature,
            sha256: sha.finalize().into(),
        })
    }
}

struct CountedVersion {
    version: PublicVersion,
    counted: Instant,
}

/// The rendered files of the current version and the version cache (in `AppState`).
#[derive(Default)]
pub struct PublicListFiles {
    version: Mutex<Option<CountedVersion>>,
    /// Held while a version is counted: one count at a time, the waiters take its result.
    counting: tokio::sync::Mutex<()>,
    /// Versions counted (for tests and a reader of the cost).
    counts: std::sync::atomic::AtomicU64,
    csv: tokio::sync::Mutex<Option<Arc<Rendered>>>,
    xlsx: tokio::sync::Mutex<Option<Arc<Rendered>>>,
    jsonl: tokio::sync::Mutex<Option<Arc<Rendered>>>,
}

impl PublicListFiles {
    fn slot(&self, format: OutputFormat) -> &tokio::sync::Mutex<Option<Arc<Rendered>>> {
        match format {
            OutputFormat::Csv => &self.csv,
            OutputFormat::Xlsx => &self.xlsx,
            OutputFormat::Jsonl => &self.jsonl,
        }
    }

    /// The current version of the public list at `now` (see the module's note on cost).
    pub async fn version(
        &self,
        db: &DatabaseConnection,
        now: DateTime<Utc>,
    ) -> AppResult<PublicVersion> {
        let (newest, _) = export::newest_public_change(db).await?;
        if let Some(v) = self.cached_version(newest) {
            return Ok(v);
        }
        let _counting = self.counting.lock().await;
        // Counted by the caller this one waited for: that count, not another.
        if let Some(v) = self.cached_version(newest) {
            return Ok(v);
        }
        let version = export::public_version(db, now).await?;
        self.counts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.remember(&version);
        Ok(version)
    }

    /// How many versions were counted so far.
    pub fn versions_counted(&self) -> u64 {
        self.counts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The remembered version, if it is of `newest_change` or later (a version counted
    /// while this caller waited may be of a newer change: current all the same) and
    /// counted less than [`VERSION_TTL`] ago.
    fn cached_version(&self, newest_change: i64) -> Option<PublicVersion> {
        let cached = self
            .version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|c| c.version.change_id >= newest_change && c.counted.elapsed() < VERSION_TTL)
            .map(|c| c.version.clone())
    }

    fn remember(&self, version: &PublicVersion) {
        *self
            .version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(CountedVersion {
            version: version.clone(),
            counted: Instant::now(),
        });
    }

    /// The file of `format` for version `wanted`: the one already rendered if it is that
    /// version, else a new render (which may be newer than `wanted` if the list changed
    /// meanwhile: the caller serves it under its own `ETag`).
    ///
    /// The render runs as a task of its own: a client that hangs up while it waits does
    /// not cancel it, so the work is done once for everyone who asks, and callers who
    /// connect and leave over and over cannot make the database start it over and over.
    pub async fn file(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        format: OutputFormat,
        wanted: &PublicVersion,
        now: DateTime<Utc>,
    ) -> AppResult<Arc<Rendered>> {
        let this = Arc::clone(self);
        let db = db.clone();
        let wanted = wanted.clone();
        tokio::spawn(async move { this.current_or_render(&db, format, &wanted, now).await })
            .await
            .map_err(AppError::internal)?
    }

    async fn current_or_render(
        &self,
        db: &DatabaseConnection,
        format: OutputFormat,
        wanted: &PublicVersion,
        now: DateTime<Utc>,
    ) -> AppResult<Arc<Rendered>> {
        let mut slot = self.slot(format).lock().await;
        if let Some(r) = slot.as_ref()
            && r.version == *wanted
        {
            return Ok(Arc::clone(r));
        }
        let rendered = Arc::new(render(db, format, now).await?);
        self.remember(&rendered.version);
        *slot = Some(Arc::clone(&rendered));
        Ok(rendered)
    }
}

/// Renders the public list in force at `now` as `format`, with its version, from one
/// snapshot.
async fn render(
    db: &DatabaseConnection,
    format: OutputFormat,
    now: DateTime<Utc>,
) -> AppResult<Rendered> {
    let (isolation, access) = match db.get_database_backend() {
        DbBackend::Postgres => (
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        ),
        // SQLite: a read transaction sees one snapshot of the WAL from its first read.
        _ => (None, None),
    };
    let tx = db.begin_with_config(isolation, access).await?;
    let version = export::public_version(&tx, now).await?;
    let file = tempfile::tempfile().map_err(AppError::internal)?;
    let out = file.try_clone().map_err(AppError::internal)?;
    let mut sink = Sink::new(
        format,
        Box::new(std::io::BufWriter::with_capacity(SLICE_BYTES, out)),
        export::columns_of(ExportKind::PublicList),
    )
    .map_err(AppError::internal)?;
    let started = Instant::now();
    let rows = export::export(
        &tx,
        ExportKind::PublicList,
        &ExportFilter::default(),
        now,
        &mut sink,
        || async { Ok(()) },
    )
    .await?;
    sink.finish().map_err(AppError::internal)?;
    tx.commit().await?;
    let len = file.metadata().map_err(AppError::internal)?.len();
    tracing::info!(
        format = ?format,
        rows,
        bytes = len,
        seconds = started.elapsed().as_secs_f64(),
        etag = %etag_of(&version),
        "public list rendered"
    );
    Ok(Rendered {
        version,
        format,
        file,
        len,
        signature: tokio::sync::OnceCell::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, Verifier};
    use std::io::Write;

    fn rendered(bytes: &[u8]) -> Arc<Rendered> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        Arc::new(Rendered {
            version: PublicVersion {
                change_id: 7,
                recorded_at: None,
                in_force: 3,
            },
            format: OutputFormat::Jsonl,
            file,
            len: bytes.len() as u64,
            signature: tokio::sync::OnceCell::new(),
        })
    }

    /// The signature fed from the file in slices is the one `SigningKey::sign` makes
    /// over the bytes in one buffer (Ed25519 is deterministic), for files shorter than a
    /// slice, of exactly one, and of several with a partial last one.
    #[tokio::test]
    async fn a_file_signed_in_slices_is_signed_as_its_bytes() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        for len in [0, 10, SLICE_BYTES, 3 * SLICE_BYTES + 17] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let file = rendered(&bytes);
            let signed = file.signature("k1", &key).await.unwrap();
            assert_eq!(signed.signature, key.sign(&bytes), "{len} bytes");
            assert!(
                key.verifying_key()
                    .verify(&bytes, &signed.signature)
                    .is_ok()
            );
            use sha2::Digest;
            assert_eq!(
                signed.sha256,
                <[u8; 32]>::from(sha2::Sha256::digest(&bytes))
            );
            assert_eq!(signed.kid, "k1");
        }
    }

    /// Concurrent callers asking for a version of a change not counted yet run one count
    /// between them; later callers take it from the cache.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_change_is_counted_once_for_every_caller() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("v.db").display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        crate::db::migrate_up(&db).await.unwrap();
        let files = Arc::new(PublicListFiles::default());
        let now = Utc::now();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (files, db) = (Arc::clone(&files), db.clone());
            callers.spawn(async move { files.version(&db, now).await.unwrap() });
        }
        let versions = callers.join_all().await;
        assert!(versions.iter().all(|v| *v == versions[0]));
        assert_eq!(files.versions_counted(), 1);
        files.version(&db, now).await.unwrap();
        assert_eq!(files.versions_counted(), 1);
    }

    #[test]
    fn a_version_names_its_change_and_count() {
        let v = PublicVersion {
            change_id: 12,
            recorded_at: None,
            in_force: 5,
        };
        assert_eq!(etag_of(&v), "\"public-list-12-5\"");
        assert_eq!(last_modified_of(&v), None);
    }
}

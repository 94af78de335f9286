package postgres

// Every PostgreSQL advisory lock this program takes is listed here, and
// nowhere else.
//
// PostgreSQL has two key spaces that never overlap: one 64-bit key
// (pg_advisory_lock(bigint)) and two 32-bit keys
// (pg_advisory_lock(int, int)). The two-key locks below are (class, key):
// each use has a class of its own, so a per-user lock (whose second key is
// a hash of the sub, any 32-bit value) can never be the same lock as a
// singleton's, whatever the user's hash.
const (
	// lockClassUserCreate serialises the creation of one user's record
	// (Update, when the row is missing); the second key is hashtext(sub).
	// Transaction locks. A hash collision only makes two users' first
	// writes wait for each other.
	lockClassUserCreate int32 = 0x5169_0001 // "signin", 1

	// lockClassSingleton holds the locks of which there is one per
	// database, second key below.
	lockClassSingleton int32 = 0x5169_0002 // "signin", 2

	// lockRoundStart (transaction lock): starting an offline round, so that
	// processes arriving together start one and join it.
	lockRoundStart int32 = 1

	// lockRiverMigrations (session lock): River's migrations, so that
	// processes starting together apply them once.
	lockRiverMigrations int32 = 2

	// migrationLockID (one 64-bit key, session lock): goose's lock while
	// applying this package's migrations. Our own number rather than
	// goose's default, so that another program migrating the same database
	// with goose does not wait on us.
	migrationLockID int64 = 0x5_1691_0001 // "signin", migrations

	// RiverLockPrefix is River's Config.AdvisoryLockPrefix: the high 32
	// bits of the one-key locks River takes (only on a deprecated path of
	// unique inserts, which our jobs, unique by their default states, do
	// not take), cordoning them off from migrationLockID.
	RiverLockPrefix int32 = 0x5169_0003 // "signin", 3
)

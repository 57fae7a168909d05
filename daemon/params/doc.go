// Package params owns PostgreSQL parameters as ramd judges them: the catalog of one major
// version read from the installed server (names, context, type, unit, range, enum values;
// see Catalog and LoadCatalog), the validation of a value as that server would judge it
// (Catalog.Check, pure Go: PostgreSQL's integer, real, boolean and enum parsing and its unit
// rules), the rules PostgreSQL cannot check alone (Review: wal_level, WAL senders and slots
// for the members, WAL sizes, memory of the node, connections left for clients), and
// pgtune-style tuning advice (Tune).
//
// Invariants: it imports only the standard library; everything that runs a PostgreSQL
// program or queries a server arrives through the small interfaces Binary and
// SettingsReader (implemented in daemon/pg). Check never clamps or drops a value: it
// accepts it or refuses it with a *ValueError modelled on PostgreSQL's own message.
package params

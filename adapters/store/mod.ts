/**
 * Store adapters: `memoryStore` (history in memory) and the SQL store
 * (`openStore` for SQLite or PostgreSQL, `sqlStore` over a migrated Kysely
 * instance), with its schema, migrations, read queries and errors.
 *
 * @module
 */
export { memoryStore } from "./memory_store.ts";
export { openStore, type OpenStoreOptions, redactUrl } from "./open_store.ts";
export { type SqlStore, sqlStore, type SqlStoreOptions } from "./sql_store.ts";
export {
  auditTrail,
  type AuditTrailPage,
  type AuditTrailQuery,
  type UsageTotals,
  usageTotals,
  type UsageTotalsQuery,
} from "./sql_queries.ts";
export { deleteSession, idleSessions, listSessions } from "./sql_sessions.ts";
export {
  type ApiKeyInfo,
  type ApiKeyListOptions,
  type ApiKeyRecord,
  type ApiKeyStore,
  apiKeyStore,
  type NewApiKey,
  type RevokeOutcome,
} from "./api_keys.ts";
export { StoreError, type StoreErrorCode } from "./errors.ts";
export { migrations } from "./migrations/mod.ts";
export type {
  ApiKeysTable,
  AuditEventsTable,
  Database,
  DeadLettersTable,
  MessagesTable,
  RunsTable,
  SessionsTable,
  UsageEventsTable,
} from "./schema.ts";
export {
  type NodeSqliteDatabase,
  nodeSqliteDialect,
  type NodeSqliteDialectOptions,
  type NodeSqliteStatement,
  type NodeSqliteValue,
} from "./node_sqlite_dialect.ts";
export { openSqlite, type OpenSqliteOptions } from "./open_sqlite.ts";

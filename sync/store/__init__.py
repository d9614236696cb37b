"""Azure Tables access: key encoding, typed errors, ETag-guarded writes, paged queries and
entity-group transactions. Repositories for each aggregate build on these pieces."""
from sync.store.catalog import Store
from sync.store.connection import StorageLocation, queue_service, table_service
from sync.store.errors import (
    ConflictError,
    InvalidKeyError,
    NotFoundError,
    StoreError,
    TransactionConflictError,
    TransactionError,
)
from sync.store.keys import SEPARATOR, compose, decode_id, encode_id, hash_key, prefix_range, split, validate_key
from sync.store.stats import TableStats
from sync.store.tables import MERGE, REPLACE, Page, Table, etag_of

__all__ = [
    "ConflictError", "InvalidKeyError", "MERGE", "NotFoundError", "Page", "REPLACE", "SEPARATOR",
    "StorageLocation", "Store", "StoreError", "Table", "TableStats", "TransactionConflictError",
    "TransactionError", "compose", "decode_id", "encode_id", "etag_of", "hash_key", "prefix_range",
    "queue_service", "split", "table_service", "validate_key",
]

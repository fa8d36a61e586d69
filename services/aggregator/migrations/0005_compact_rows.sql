-- Smaller rows for the two tables that grow with every dossier and every event (docs/operations.md,
-- "Storage per event").

-- States as JSON text in the compact form of `state_codec` (versions listed once, instants as
-- integers): written and read as text, so PostgreSQL parses no JSON on either path. The rows stored
-- before keep their earlier form, which the codec also reads, until an event changes them.
ALTER TABLE aggregate_states ALTER COLUMN state TYPE text USING state::text;

-- Event identities: the 16-byte key as uuid (fixed length: no length header in the row or in the
-- index entry) and as digest the first 8 bytes of the record's SHA-256, as a bigint. A resend with
-- other content is still told from a duplicate unless those 64 bits collide (2^-64 per resend).
CREATE TABLE event_identities_compact (
    key uuid PRIMARY KEY,
    digest bigint NOT NULL
);

INSERT INTO event_identities_compact (key, digest)
SELECT encode(key, 'hex')::uuid, ('x' || encode(substring(digest FROM 1 FOR 8), 'hex'))::bit(64)::bigint
FROM event_identities
ORDER BY 1;

DROP TABLE event_identities;
ALTER TABLE event_identities_compact RENAME TO event_identities;
ALTER INDEX event_identities_compact_pkey RENAME TO event_identities_pkey;

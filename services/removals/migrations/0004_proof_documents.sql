-- Proof documents of prior_client removals (docs/design.md 1.6): the file an agent uploads
-- (PDF, PNG or JPEG, told by its bytes), sealed like a lead's contact (PiiCipher: a closing
-- statement names the client). The bytes and the file name go when the client is erased; what
-- was uploaded, when, its type, size and SHA-256 stay for the record.
CREATE TABLE IF NOT EXISTS proof_documents (
    document_id    text        PRIMARY KEY,
    lead_id        text        NOT NULL,
    agent_id       text        NOT NULL,
    filename       text,                   -- NULL once erased
    media_type     text        NOT NULL
        CHECK (media_type IN ('application/pdf', 'image/png', 'image/jpeg')),
    size_bytes     integer     NOT NULL CHECK (size_bytes > 0),
    sha256         text        NOT NULL,
    content_sealed bytea,                  -- NULL once erased
    uploaded_at    timestamptz NOT NULL,
    erased_at      timestamptz,
    FOREIGN KEY (lead_id, agent_id) REFERENCES leads (lead_id, agent_id)
);
-- ciphertext does not compress: store it out of line without trying
ALTER TABLE proof_documents ALTER COLUMN content_sealed SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS proof_documents_by_lead ON proof_documents (lead_id, agent_id);

ALTER TABLE removal_requests ADD COLUMN IF NOT EXISTS proof_document_id text
    REFERENCES proof_documents (document_id);

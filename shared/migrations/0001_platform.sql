-- Tables every service has: the inbox (processed event ids), the outbox (events to publish)
-- and the mail outbox (emails to send, encrypted until sent).

CREATE TABLE IF NOT EXISTS inbox (
    ce_id        text        PRIMARY KEY,
    ce_type      text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS outbox (
    id           bigserial   PRIMARY KEY,
    topic        text        NOT NULL,
    message_key  text,
    ce_id        text        NOT NULL UNIQUE,
    ce_type      text        NOT NULL,
    headers      jsonb       NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- assigned by the single relay, in order, when it picks the row up: the relay's cursor
    -- (committed to Kafka atomically with the events) is a position in this sequence
    relay_seq    bigint      UNIQUE,
    published_at timestamptz
);
CREATE SEQUENCE IF NOT EXISTS outbox_relay_seq;
CREATE INDEX IF NOT EXISTS outbox_unrelayed ON outbox (id) WHERE relay_seq IS NULL;
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (relay_seq) WHERE published_at IS NULL;

CREATE TABLE IF NOT EXISTS mail_outbox (
    id              bigserial   PRIMARY KEY,
    dedupe_key      text        NOT NULL UNIQUE,
    recipient_index text        NOT NULL,
    sealed          bytea,
    template        text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

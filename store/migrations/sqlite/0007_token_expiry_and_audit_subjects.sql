-- Team tokens may expire and record when they were last used (coarsely, at
-- most once a minute); the audit log also records silences and token issue
-- and revoke, so each row names its subject. Keep in step with
-- ../mysql/0007_token_expiry_and_audit_subjects.sql.
ALTER TABLE api_tokens ADD COLUMN expires_at_ms BIGINT NULL;
ALTER TABLE api_tokens ADD COLUMN last_used_at_ms BIGINT NULL;

-- monitor, silence or token; monitor_id then holds that subject's id.
ALTER TABLE audit_log ADD COLUMN subject TEXT NOT NULL DEFAULT 'monitor';

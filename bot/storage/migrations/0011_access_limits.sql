-- Hardening against misuse (issue #8): masked phones in the audit trail, a per-person reveal
-- limit, and invite-code guessing throttled in the database instead of in memory.

-- 1. The audit trail keeps phone numbers masked (138****1234, 0551-****5678), like
--    bot.privacy.mask_phone: a changed or withdrawn number must not live on in full here.
--    Rewrites what earlier versions stored in full (edit details: {"phone": [old, new]}).
-- (json_tree may quote keys, $."phone"[0]: the quotes are dropped to compare.)
CREATE TEMP TABLE audit_phones AS
SELECT a.id AS id, replace(p.fullkey, '"', '') AS path,
       CASE
         WHEN p.atom LIKE '%*%' THEN p.atom
         WHEN length(p.atom) = 11
              AND p.atom GLOB '1[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'
           THEN substr(p.atom, 1, 3) || '****' || substr(p.atom, -4)
         WHEN p.atom GLOB '0[0-9]*-[0-9]*'
           THEN substr(p.atom, 1, instr(p.atom, '-')) || '****' || substr(p.atom, -4)
         ELSE substr('********************************', 1, max(length(p.atom) - 2, 0))
              || substr(p.atom, -2)
       END AS masked
FROM audit_log a, json_tree(a.detail) p
WHERE p.type = 'text'
  AND replace(p.fullkey, '"', '') IN (
        '$.phone', '$.phone[0]', '$.phone[1]',
        '$.emergency_phone', '$.emergency_phone[0]', '$.emergency_phone[1]');

UPDATE audit_log SET detail = json_set(detail, '$.phone', (
    SELECT masked FROM audit_phones x WHERE x.id = audit_log.id AND x.path = '$.phone'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.phone');
UPDATE audit_log SET detail = json_set(detail, '$.phone[0]', (
    SELECT masked FROM audit_phones x WHERE x.id = audit_log.id AND x.path = '$.phone[0]'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.phone[0]');
UPDATE audit_log SET detail = json_set(detail, '$.phone[1]', (
    SELECT masked FROM audit_phones x WHERE x.id = audit_log.id AND x.path = '$.phone[1]'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.phone[1]');
UPDATE audit_log SET detail = json_set(detail, '$.emergency_phone', (
    SELECT masked FROM audit_phones x WHERE x.id = audit_log.id AND x.path = '$.emergency_phone'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.emergency_phone');
UPDATE audit_log SET detail = json_set(detail, '$.emergency_phone[0]', (
    SELECT masked FROM audit_phones x
    WHERE x.id = audit_log.id AND x.path = '$.emergency_phone[0]'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.emergency_phone[0]');
UPDATE audit_log SET detail = json_set(detail, '$.emergency_phone[1]', (
    SELECT masked FROM audit_phones x
    WHERE x.id = audit_log.id AND x.path = '$.emergency_phone[1]'))
WHERE id IN (SELECT id FROM audit_phones WHERE path = '$.emergency_phone[1]');
DROP TABLE audit_phones;

-- 2. Counting one person's recent reveals (the reveal limit) without scanning the trail.
CREATE INDEX audit_user_action ON audit_log(user_id, action, at) WHERE user_id IS NOT NULL;

-- 3. Wrong invite codes, per chat identity and overall; kept across restarts.
CREATE TABLE invite_failures (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    external_id TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX invite_failures_identity ON invite_failures(channel, external_id, at);
CREATE INDEX invite_failures_at ON invite_failures(at);

-- Set when too many wrong codes arrive overall: until then every code attempt is refused.
CREATE TABLE invite_lockout (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    until       TEXT NOT NULL,
    failures    INTEGER NOT NULL
);

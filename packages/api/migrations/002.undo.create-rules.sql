DROP TABLE rules_outbox;
DROP TABLE rule_entries;
DROP TABLE rules;
DROP FUNCTION rules_outbox_enqueue();
ALTER TABLE users DROP COLUMN role;

-- Monitors may name groups and topics by regular expression.
ALTER TABLE monitors ADD COLUMN group_match VARCHAR(16) NOT NULL DEFAULT 'exact';
ALTER TABLE monitors ADD COLUMN topic_regex VARCHAR(1000) NOT NULL DEFAULT '';

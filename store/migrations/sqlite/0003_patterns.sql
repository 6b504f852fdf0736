-- Monitors may name groups and topics by regular expression.
ALTER TABLE monitors ADD COLUMN group_match TEXT NOT NULL DEFAULT 'exact';
ALTER TABLE monitors ADD COLUMN topic_regex TEXT NOT NULL DEFAULT '';

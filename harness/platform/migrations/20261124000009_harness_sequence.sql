-- The builders' sequence: numbers that stay unique across every process writing to one
-- database (a shared QA database), and start at 1 in each fresh test database, so that seeded
-- data is the same on every run.
create sequence harness_sequence;

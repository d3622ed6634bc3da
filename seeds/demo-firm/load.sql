-- dataforge seed of profile demo-firm (seed 1, scale 1, anchor 2026-01-15).
-- Load it from this folder into a database that has the schema:
--   psql "$DATABASE_URL" -f schema.sql   # only if the tables do not exist yet
--   psql "$DATABASE_URL" -f load.sql
-- Everything loads in one transaction: on any error nothing is written.
\set ON_ERROR_STOP on
BEGIN;
\copy "firms" ("id", "name", "address", "vat_id", "email", "phone", "created_at") FROM 'firms.csv' WITH (FORMAT csv, HEADER true)
\copy "users" ("id", "firm_id", "role", "first_name", "last_name", "email", "azure_ad_id", "phone", "created_at") FROM 'users.csv' WITH (FORMAT csv, HEADER true)
\copy "clients" ("id", "firm_id", "name", "address", "email", "phone", "created_at") FROM 'clients.csv' WITH (FORMAT csv, HEADER true)
\copy "cases" ("id", "client_id", "responsible_user_id", "status", "case_type", "opened_at", "closed_at", "case_number", "title", "description") FROM 'cases.csv' WITH (FORMAT csv, HEADER true)
\copy "documents" ("id", "case_id", "author_id", "document_type", "status", "ai_generated", "created_at", "title", "content", "storage_url", "content_embedding") FROM 'documents.csv' WITH (FORMAT csv, HEADER true)
\copy "tasks" ("id", "case_id", "assignee_id", "task_type", "status", "due_date", "title") FROM 'tasks.csv' WITH (FORMAT csv, HEADER true)
COMMIT;

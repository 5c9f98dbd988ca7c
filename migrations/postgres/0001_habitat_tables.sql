-- 0001_habitat_tables: the five tables of the Habitat application, in schema `public`.
--
-- Why the design is as it is:
-- * This is the schema the Habitat application itself expects. Its contract test
--   (packages/shared/src/__tests__/contract/schema-alignment.test.ts) reads information_schema, so
--   names, types and nullability follow it exactly: uuid keys from gen_random_uuid() (core since
--   PostgreSQL 13), PostgreSQL enum types, timestamptz for every date/time column (the tool stores a
--   date-only value as midnight UTC), numeric(15,2) for money (never a float), numeric(19,10) for the
--   patronage score (never an unconstrained numeric).
-- * The database itself enforces the rules of SPEC §3 (checks, uniqueness, foreign keys), so no other
--   writer (the application, a hand-run psql session) can break them either. The only one-way rule
--   is approved => approved_at, because approved_at on a pending/rejected row is only a warning.
-- * Every constraint and index is named explicitly, with the names PostgreSQL would pick anyway
--   (members_pkey, members_email_key, contributions_member_id_fkey, ...): the tool's Rust code turns a
--   violated constraint's name into a message and compares an existing schema against these names.
-- * Objects are schema-qualified (`public.`) so a connection's search_path cannot move them.
-- * No IF NOT EXISTS: the runner runs this file only on a database without these tables. Where the
--   Habitat application created them already, the runner checks them against this shape instead and
--   either adopts them or names every difference; silently skipping an incompatible table here would
--   hide exactly that.
-- * No BEGIN/COMMIT: the runner executes the file inside its own transaction, together with the row
--   it writes to habitat_migrate.schema_migrations.
-- * No bookkeeping of the tool here, and no extra columns: that lives in schema habitat_migrate (0002).

CREATE TYPE public.member_role AS ENUM ('member', 'steward', 'admin');
CREATE TYPE public.member_status AS ENUM ('active', 'inactive', 'pending');
CREATE TYPE public.contribution_type AS ENUM ('labor', 'capital', 'property');
CREATE TYPE public.contribution_status AS ENUM ('pending', 'approved', 'rejected');
CREATE TYPE public.period_status AS ENUM ('open', 'closed', 'archived');
CREATE TYPE public.allocation_status AS ENUM ('calculated', 'distributed');

CREATE TABLE public.members (
    id            uuid                 NOT NULL DEFAULT gen_random_uuid(),
    email         varchar(320)         NOT NULL,
    ens_name      varchar(255),
    display_name  varchar(255),
    role          public.member_role   NOT NULL DEFAULT 'member',
    status        public.member_status NOT NULL DEFAULT 'pending',
    joined_at     timestamptz          NOT NULL,
    password_hash varchar(255),
    created_at    timestamptz          NOT NULL DEFAULT now(),
    updated_at    timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT members_pkey PRIMARY KEY (id),
    CONSTRAINT members_email_key UNIQUE (email),
    CONSTRAINT members_ens_name_key UNIQUE (ens_name),
    CONSTRAINT members_email_lowercase CHECK (email = lower(email)),
    CONSTRAINT members_email_format CHECK (email ~ '^[^\s@]+@[^\s@]+\.[^\s@]+$'),
    CONSTRAINT members_ens_name_format CHECK (ens_name ~ '^[a-z0-9-]+(\.[a-z0-9-]+)*\.eth$')
);

CREATE TABLE public.allocation_periods (
    id          uuid                 NOT NULL DEFAULT gen_random_uuid(),
    name        varchar(255)         NOT NULL,
    description text,
    start_date  timestamptz          NOT NULL,
    end_date    timestamptz          NOT NULL,
    status      public.period_status NOT NULL DEFAULT 'open',
    closed_at   timestamptz,
    created_at  timestamptz          NOT NULL DEFAULT now(),
    updated_at  timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT allocation_periods_pkey PRIMARY KEY (id),
    CONSTRAINT allocation_periods_name_key UNIQUE (name),
    CONSTRAINT allocation_periods_end_date_check CHECK (end_date >= start_date)
);

CREATE TABLE public.capital_accounts (
    id           uuid          NOT NULL DEFAULT gen_random_uuid(),
    member_id    uuid          NOT NULL,
    balance      numeric(15,2) NOT NULL DEFAULT 0,
    tax_basis    numeric(15,2) NOT NULL DEFAULT 0,
    notes        text,
    last_updated timestamptz   NOT NULL DEFAULT now(),
    created_at   timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT capital_accounts_pkey PRIMARY KEY (id),
    CONSTRAINT capital_accounts_member_id_key UNIQUE (member_id),
    CONSTRAINT capital_accounts_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.members (id),
    CONSTRAINT capital_accounts_balance_check CHECK (balance >= 0),
    CONSTRAINT capital_accounts_tax_basis_check CHECK (tax_basis >= 0)
);

CREATE TABLE public.contributions (
    id                uuid                       NOT NULL DEFAULT gen_random_uuid(),
    member_id         uuid                       NOT NULL,
    period_id         uuid                       NOT NULL,
    contribution_type public.contribution_type   NOT NULL,
    amount            numeric(15,2)              NOT NULL,
    description       text,
    status            public.contribution_status NOT NULL DEFAULT 'pending',
    approved_by       uuid,
    approved_at       timestamptz,
    created_at        timestamptz                NOT NULL DEFAULT now(),
    updated_at        timestamptz                NOT NULL DEFAULT now(),
    CONSTRAINT contributions_pkey PRIMARY KEY (id),
    CONSTRAINT contributions_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.members (id),
    CONSTRAINT contributions_period_id_fkey FOREIGN KEY (period_id) REFERENCES public.allocation_periods (id),
    CONSTRAINT contributions_approved_by_fkey FOREIGN KEY (approved_by) REFERENCES public.members (id),
    CONSTRAINT contributions_amount_check CHECK (amount > 0),
    CONSTRAINT contributions_approved_at_check CHECK (status <> 'approved' OR approved_at IS NOT NULL)
);
CREATE INDEX contributions_member_id_idx ON public.contributions (member_id);
CREATE INDEX contributions_period_id_idx ON public.contributions (period_id);

CREATE TABLE public.allocations (
    id              uuid                     NOT NULL DEFAULT gen_random_uuid(),
    member_id       uuid                     NOT NULL,
    period_id       uuid                     NOT NULL,
    amount          numeric(15,2)            NOT NULL,
    patronage_score numeric(19,10)           NOT NULL DEFAULT 0,
    status          public.allocation_status NOT NULL DEFAULT 'calculated',
    distributed_at  timestamptz,
    created_at      timestamptz              NOT NULL DEFAULT now(),
    updated_at      timestamptz              NOT NULL DEFAULT now(),
    CONSTRAINT allocations_pkey PRIMARY KEY (id),
    CONSTRAINT allocations_member_period_key UNIQUE (member_id, period_id),
    CONSTRAINT allocations_member_id_fkey FOREIGN KEY (member_id) REFERENCES public.members (id),
    CONSTRAINT allocations_period_id_fkey FOREIGN KEY (period_id) REFERENCES public.allocation_periods (id),
    CONSTRAINT allocations_distributed_at_check CHECK (status <> 'distributed' OR distributed_at IS NOT NULL)
);
CREATE INDEX allocations_member_id_idx ON public.allocations (member_id);
CREATE INDEX allocations_period_id_idx ON public.allocations (period_id);

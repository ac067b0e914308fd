-- Every change of a project's status and of its steps, as numbered events: what
-- `GET /v1/projects/{id}/events` streams (Server-Sent Events, resumable by `Last-Event-ID`) and
-- what `?wait=` long-polls wake on.
--
-- Recorded by triggers, in the transaction of the change itself, so no writer can change a
-- project without its event, and no event exists for a change that rolled back. `seq` numbers a
-- project's events 1, 2, 3, … without gaps, in commit order: the trigger locks the project's
-- row before numbering (a step's change locks it too), so two transactions of one project
-- number one after the other. Each event wakes the project's watchers on every instance
-- (NOTIFY provisioning_events, payload the project id), also only at commit.

CREATE TABLE project_events (
    project_id  uuid        NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    seq         bigint      NOT NULL CHECK (seq >= 1),
    type        text        NOT NULL CHECK (type IN ('project.status', 'step.status')),
    data        jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, seq)
);

CREATE FUNCTION record_project_event(p_project uuid, p_type text, p_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
    current_status text;
BEGIN
    SELECT status INTO current_status FROM provisioning.projects WHERE id = p_project FOR UPDATE;
    SELECT coalesce(max(seq), 0) + 1 INTO next_seq FROM provisioning.project_events WHERE project_id = p_project;
    INSERT INTO provisioning.project_events (project_id, seq, type, data)
    VALUES (p_project, next_seq, p_type, p_data || jsonb_build_object('project_status', current_status));
    PERFORM pg_notify('provisioning_events', p_project::text);
END
$$;

-- A project created or moved to another status. A failure names the step that failed and why.
CREATE FUNCTION project_status_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    latest_id uuid;
    latest_kind text;
    latest_error text;
    failed_step text;
    failed_error text;
BEGIN
    SELECT id, kind, error INTO latest_id, latest_kind, latest_error FROM provisioning.workflow_executions
    WHERE project_id = NEW.id ORDER BY created_at DESC LIMIT 1;
    IF NEW.status = 'failed' AND latest_id IS NOT NULL THEN
        SELECT step, last_error INTO failed_step, failed_error FROM provisioning.provisioning_steps
        WHERE execution_id = latest_id AND status = 'failed' ORDER BY position LIMIT 1;
    END IF;
    PERFORM provisioning.record_project_event(NEW.id, 'project.status', jsonb_strip_nulls(jsonb_build_object(
        'status', NEW.status,
        'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
        'is_active', NEW.is_active,
        'workflow_id', latest_id,
        'workflow_kind', latest_kind,
        'failed_step', failed_step,
        'error', CASE WHEN NEW.status = 'failed' THEN coalesce(failed_error, latest_error) END
    )));
    RETURN NULL;
END
$$;

CREATE TRIGGER project_status_event AFTER INSERT ON projects
    FOR EACH ROW EXECUTE FUNCTION project_status_event();
CREATE TRIGGER project_status_changed_event AFTER UPDATE OF status ON projects
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION project_status_event();

-- A step (or compensation) that moved to another status, or began another attempt.
CREATE FUNCTION step_status_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    execution_project uuid;
    execution_kind text;
BEGIN
    SELECT project_id, kind INTO execution_project, execution_kind FROM provisioning.workflow_executions WHERE id = NEW.execution_id;
    PERFORM provisioning.record_project_event(execution_project, 'step.status', jsonb_strip_nulls(jsonb_build_object(
        'workflow_id', NEW.execution_id,
        'workflow_kind', execution_kind,
        'step', NEW.step,
        'status', NEW.status,
        'attempts', NEW.attempts,
        'error', NEW.last_error
    )));
    RETURN NULL;
END
$$;

CREATE TRIGGER step_status_event AFTER UPDATE OF status, attempts ON provisioning_steps
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.attempts IS DISTINCT FROM NEW.attempts)
    EXECUTE FUNCTION step_status_event();

-- Existing projects start their stream at their current status.
INSERT INTO project_events (project_id, seq, type, data)
SELECT id, 1, 'project.status', jsonb_build_object('status', status, 'is_active', is_active, 'project_status', status)
FROM projects;

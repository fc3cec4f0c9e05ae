//! The project-management model of "Design Small Aggregates", refactored into small
//! aggregates: a project does not hold its tasks, teams or time entries.
//!
//! | Concept | Atomically consistent with Project? | Decision |
//! |---|---|---|
//! | name, status | yes | inside [`Project`] |
//! | team | no | [`Team`], with [`TeamMember`] entities |
//! | task | no | [`Task`] |
//! | task comments | with the task | [`Comment`], entity of [`Task`] |
//! | time entries | no | [`TimeEntry`] |
//! | task counts | derived | [`ProjectTaskCounts`], a projection of [`TaskCreated`] and [`TaskCompleted`] |
//! | progress | derived, eventually | updated from the task events, reading [`ProjectTaskCounts`] |

use protean::prelude::*;

/// Someone who works on projects (outside this model's concern beyond its identity).
#[aggregate]
pub struct User {
    #[field(min_length = 1)]
    pub name: String,
}

/// Whether a project is running.
#[value_object]
pub enum ProjectStatus {
    Active,
    OnHold,
    Closed,
}

/// A project: name, status and progress; progress follows task completions through
/// events. It holds no task, not even a count of them: those are in [`ProjectTaskCounts`].
#[aggregate]
pub struct Project {
    #[field(min_length = 1, max_length = 200)]
    pub name: String,
    pub description: Option<String>,
    #[field(default = ProjectStatus::Active)]
    pub status: ProjectStatus,
    /// Percentage of completed tasks, updated eventually.
    #[field(min = 0.0, max = 100.0, default = 0.0)]
    pub progress: f64,
}

impl Project {
    /// Recomputes the progress from the project's task counts.
    pub fn update_progress(&mut self, completed: u32, total: u32) -> Result<(), DomainError> {
        self.change(|project| {
            if total > 0 {
                project.progress = f64::from(completed.min(total)) / f64::from(total) * 100.0;
            }
            Ok(())
        })
    }
}

/// The role of a team member.
#[value_object]
pub enum Role {
    Member,
    Lead,
}

/// The people assigned to a project; changes independently of the project.
#[aggregate]
#[invariant(post = one_membership_per_user)]
pub struct Team {
    pub project_id: Identifier<Project>,
    pub members: HasMany<TeamMember>,
}

impl Team {
    fn one_membership_per_user(&self) -> InvariantResult {
        let mut seen = std::collections::HashSet::new();
        for member in &self.members {
            if !seen.insert(member.user_id.clone()) {
                return Err(ValidationError::field("members", format!("user {} is a member twice", member.user_id)));
            }
        }
        Ok(())
    }

    /// Adds a member.
    pub fn add_member(&mut self, user_id: Identifier<User>, role: Role) -> Result<(), DomainError> {
        self.change(|team| {
            team.members.add(TeamMember::builder().user_id(user_id).role(role).build()?);
            Ok(())
        })
    }
}

/// A member of a team.
#[entity(part_of = Team)]
pub struct TeamMember {
    pub user_id: Identifier<User>,
    #[field(default = Role::Member)]
    pub role: Role,
}

/// Whether a task is done.
#[value_object]
pub enum TaskStatus {
    Open,
    Completed,
}

/// A task of a project, with its comments.
#[aggregate]
pub struct Task {
    pub project_id: Identifier<Project>,
    pub assignee_id: Option<Identifier<User>>,
    #[field(min_length = 1, max_length = 200)]
    pub title: String,
    #[field(default = TaskStatus::Open)]
    pub status: TaskStatus,
    pub comments: HasMany<Comment>,
}

impl Task {
    /// Completes the task once, raising [`TaskCompleted`].
    pub fn complete(&mut self) -> Result<(), DomainError> {
        self.change(|task| {
            if task.status == TaskStatus::Completed {
                return Ok(());
            }
            task.status = TaskStatus::Completed;
            let event = TaskCompleted { task_id: task.id.clone(), project_id: task.project_id.clone() };
            task.raise(event);
            Ok(())
        })
    }

    /// Posts a comment.
    pub fn comment(&mut self, author_id: Identifier<User>, content: &str) -> Result<(), DomainError> {
        self.change(|task| {
            let comment = Comment::builder()
                .author_id(author_id)
                .content(content)
                .posted_at(std::time::SystemTime::now())
                .build()?;
            task.comments.add(comment);
            Ok(())
        })
    }
}

/// A comment on a task: inside the task's boundary.
#[entity(part_of = Task)]
pub struct Comment {
    pub author_id: Identifier<User>,
    #[field(min_length = 1, max_length = 5000)]
    pub content: String,
    pub posted_at: std::time::SystemTime,
}

/// Time logged against a task: its own aggregate, since no invariant ties it to the task.
#[aggregate]
pub struct TimeEntry {
    pub task_id: Identifier<Task>,
    pub user_id: Identifier<User>,
    #[field(min = 0.25, max = 24)]
    pub hours: f64,
    pub description: Option<String>,
}

/// A task was created in a project.
#[event(part_of = Task)]
pub struct TaskCreated {
    pub task_id: Identifier<Task>,
    pub project_id: Identifier<Project>,
}

/// A task was completed; the project's progress follows.
#[event(part_of = Task)]
pub struct TaskCompleted {
    pub task_id: Identifier<Task>,
    pub project_id: Identifier<Project>,
}

/// Start a project.
#[command(part_of = Project)]
pub struct CreateProject {
    pub project_id: Identifier<Project>,
    #[field(min_length = 1, max_length = 200)]
    pub name: String,
}

/// Create a task in a project.
#[command(part_of = Task)]
pub struct CreateTask {
    pub task_id: Identifier<Task>,
    pub project_id: Identifier<Project>,
    #[field(min_length = 1, max_length = 200)]
    pub title: String,
}

/// Complete a task.
#[command(part_of = Task)]
pub struct CompleteTask {
    pub task_id: Identifier<Task>,
}

/// Log time against a task.
#[command(part_of = TimeEntry)]
pub struct LogTime {
    pub entry_id: Identifier<TimeEntry>,
    pub task_id: Identifier<Task>,
    pub user_id: Identifier<User>,
    #[field(min = 0.25, max = 24)]
    pub hours: f64,
}

// --- Handlers: a task changes in its own transaction; the project follows through events. ---

/// The commands that change a [`Project`].
pub struct ProjectCommands;

#[handler(part_of = Project)]
impl ProjectCommands {
    /// Starts a project.
    async fn create(ctx: &mut Context<Project>, command: CreateProject) -> Result<(), DomainError> {
        ctx.add(Project::builder().id(command.project_id).name(command.name).build()?)?;
        Ok(())
    }
}

/// How many tasks a project has, open and done: the read model the article keeps
/// "rather than loading all tasks". One row per project, kept by [`TaskCounter`].
#[projection]
pub struct ProjectTaskCounts {
    /// The project: the row's key.
    #[key]
    pub project_id: Identifier<Project>,
    /// Tasks not completed yet.
    #[index]
    pub open: u32,
    /// Tasks completed.
    #[index]
    pub done: u32,
}

impl ProjectTaskCounts {
    /// Every task of the project.
    pub fn total(&self) -> u32 {
        self.open + self.done
    }
}

/// Keeps [`ProjectTaskCounts`], **inline**: the counts change in the transaction of the
/// task event that feeds them. So [`ProjectProgress`], reacting to that same event after
/// the commit, reads counts that already include it, in either delivery mode, and the
/// progress never lags one task behind (with an async projector the reaction could run
/// before the projector, and would have to guess, as the article's `completed_count + 1`
/// does). The price: tasks of one project created or completed at once change the same
/// row, and one of the two units of work runs again. The [`Project`] aggregate itself is
/// never locked by a task.
pub struct TaskCounter;

#[projector(projection = ProjectTaskCounts, inline)]
impl TaskCounter {
    /// A new task is open.
    async fn created(rows: &mut Rows<ProjectTaskCounts>, event: &TaskCreated) -> Result<(), DomainError> {
        let new = || ProjectTaskCounts { project_id: event.project_id.clone(), open: 0, done: 0 };
        rows.upsert(&event.project_id, new, |counts| counts.open += 1).await
    }

    /// A completed task is done, no longer open.
    async fn completed(rows: &mut Rows<ProjectTaskCounts>, event: &TaskCompleted) -> Result<(), DomainError> {
        let new = || ProjectTaskCounts { project_id: event.project_id.clone(), open: 0, done: 0 };
        rows.upsert(&event.project_id, new, |counts| {
            counts.open = counts.open.saturating_sub(1);
            counts.done += 1;
        })
        .await
    }
}

/// Keeps a [`Project`]'s progress from its tasks' events: eventually consistent, and a
/// time entry or a comment never touches the project. It reads the counts from
/// [`ProjectTaskCounts`] instead of loading the project's tasks.
pub struct ProjectProgress;

#[handler(part_of = Project)]
impl ProjectProgress {
    /// A new task lowers the share of those done.
    async fn task_created(ctx: &mut Context<Project>, event: &TaskCreated) -> Result<(), DomainError> {
        update_progress(ctx, &event.project_id).await
    }

    /// A completed task raises it.
    async fn task_completed(ctx: &mut Context<Project>, event: &TaskCompleted) -> Result<(), DomainError> {
        update_progress(ctx, &event.project_id).await
    }
}

/// Sets a project's progress from its task counts, read from [`ProjectTaskCounts`].
async fn update_progress(ctx: &mut Context<Project>, project_id: &Identifier<Project>) -> Result<(), DomainError> {
    let counts = ctx.read::<ProjectTaskCounts>(project_id).await?;
    let Some(counts) = counts else { return Ok(()) };
    ctx.load(project_id).await?.update_progress(counts.done, counts.total())
}

/// The commands that change a [`Task`].
pub struct TaskCommands;

#[handler(part_of = Task)]
impl TaskCommands {
    /// Creates a task, raising [`TaskCreated`].
    async fn create(ctx: &mut Context<Task>, command: CreateTask) -> Result<(), DomainError> {
        let mut task =
            Task::builder().id(command.task_id).project_id(command.project_id).title(command.title).build()?;
        let event = TaskCreated { task_id: task.id.clone(), project_id: task.project_id.clone() };
        task.raise(event);
        ctx.add(task)?;
        Ok(())
    }

    /// Completes a task, raising [`TaskCompleted`] once.
    async fn complete(ctx: &mut Context<Task>, command: CompleteTask) -> Result<(), DomainError> {
        ctx.load(&command.task_id).await?.complete()
    }
}

/// The commands that change a [`TimeEntry`].
pub struct TimeCommands;

#[handler(part_of = TimeEntry)]
impl TimeCommands {
    /// Logs time against a task: a new small aggregate, no lock on the task or the project.
    async fn log(ctx: &mut Context<TimeEntry>, command: LogTime) -> Result<(), DomainError> {
        let entry = TimeEntry::builder()
            .id(command.entry_id)
            .task_id(command.task_id)
            .user_id(command.user_id)
            .hours(command.hours)
            .build()?;
        ctx.add(entry)?;
        Ok(())
    }
}

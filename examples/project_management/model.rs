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
//! | progress | derived, eventually | updated from [`TaskCompleted`] |

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

/// A project: name, status and progress; progress follows task completions through events.
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
    /// Tasks created in the project: a count, not the tasks (they are aggregates of their own).
    #[field(default = 0u32)]
    pub tasks: u32,
    /// Tasks completed.
    #[field(default = 0u32)]
    pub completed_tasks: u32,
}

impl Project {
    /// Recomputes the progress from the task counts the project keeps.
    pub fn update_progress(&mut self, completed: u32, total: u32) -> Result<(), DomainError> {
        self.change(|project| {
            if total > 0 {
                project.progress = f64::from(completed.min(total)) / f64::from(total) * 100.0;
            }
            Ok(())
        })
    }

    /// A task was created in this project.
    pub fn task_added(&mut self) -> Result<(), DomainError> {
        self.tasks += 1;
        self.update_progress(self.completed_tasks, self.tasks)
    }

    /// A task of this project was completed.
    pub fn task_completed(&mut self) -> Result<(), DomainError> {
        self.completed_tasks += 1;
        self.update_progress(self.completed_tasks, self.tasks)
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

/// A task was completed; the project's progress follows.
/// A task was created in a project.
#[event(part_of = Task)]
pub struct TaskCreated {
    pub task_id: Identifier<Task>,
    pub project_id: Identifier<Project>,
}

#[event(part_of = Task)]
pub struct TaskCompleted {
    pub task_id: Identifier<Task>,
    pub project_id: Identifier<Project>,
}

/// Complete a task.
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

/// Keeps a [`Project`]'s progress from its tasks' events: eventually consistent, and a
/// time entry or a comment never touches the project.
pub struct ProjectProgress;

#[handler(part_of = Project)]
impl ProjectProgress {
    /// Counts a new task.
    async fn task_created(ctx: &mut Context<Project>, event: &TaskCreated) -> Result<(), DomainError> {
        ctx.load(&event.project_id).await?.task_added()
    }

    /// Counts a completed task and updates the progress.
    async fn task_completed(ctx: &mut Context<Project>, event: &TaskCompleted) -> Result<(), DomainError> {
        ctx.load(&event.project_id).await?.task_completed()
    }
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

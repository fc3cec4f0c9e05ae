//! The project-management model of "Design Small Aggregates": tasks are completed in
//! their own transactions and the project's progress follows through `TaskCompleted`,
//! from the task counts a projection (`ProjectTaskCounts`) keeps, instead of loading
//! the project's tasks.
//!
//! `cargo run --example project_management` runs it on SQLite (`project_management.db`);
//! `PROTEAN_DATABASE_URL` chooses another store (`postgres://…` with `--features
//! postgres`, `memory:`); add `-- --dot` to print the model as Graphviz DOT.

pub mod model;

use protean::prelude::*;

use model::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("PROTEAN_DATABASE_URL").unwrap_or_else(|_| "sqlite:project_management.db".into());
    let store = protean::store::connect(&url).await?;
    let domain = Domain::builder().module("project_management::model").shared_store(store).build()?;
    // The counts of tasks an earlier run created before the projection existed are built
    // from the event log first.
    for report in domain.rebuild_outdated().await? {
        println!("rebuilt {} from {} event(s)", report.projection, report.events);
    }
    domain.deliver_pending().await?.all_delivered()?;
    if std::env::args().any(|a| a == "--dot") {
        println!("{}", domain.model().to_dot());
    }

    let project = Identifier::<Project>::generate();
    domain.process(CreateProject { project_id: project.clone(), name: "Launch".into() }).await?.all_delivered()?;
    let tasks: Vec<Identifier<Task>> = (0..4).map(|_| Identifier::generate()).collect();
    for (n, task) in tasks.iter().enumerate() {
        let title = format!("Task {}", n + 1);
        domain
            .process(CreateTask { task_id: task.clone(), project_id: project.clone(), title })
            .await?
            .all_delivered()?;
    }

    let ada = Identifier::<User>::generate();
    for task in &tasks[..3] {
        domain
            .process(LogTime {
                entry_id: Identifier::generate(),
                task_id: task.clone(),
                user_id: ada.clone(),
                hours: 1.5,
            })
            .await?
            .all_delivered()?;
        let processed = domain.process(CompleteTask { task_id: task.clone() }).await?;
        let progress = domain.get::<Project>(&project).await?.ok_or("no project")?.progress;
        println!("{}: progress {progress:.0}%", processed.event_types().join(" → "));
    }

    // Completing a task twice raises nothing more, so the progress does not move.
    let processed = domain.process(CompleteTask { task_id: tasks[0].clone() }).await?;
    println!("completing again raised {} event(s)", processed.events.len());
    let counts = domain.projection::<ProjectTaskCounts>(&project).await?.ok_or("no counts")?;
    let launch = domain.get::<Project>(&project).await?.ok_or("no project")?;
    println!("{}: {} of {} tasks done, {:.0}%", launch.name, counts.done, counts.total(), launch.progress);

    // A second project, all open; then the projects with open tasks, most first: a query
    // the store runs on the projection's declared fields.
    let backlog = Identifier::<Project>::generate();
    domain.process(CreateProject { project_id: backlog.clone(), name: "Backlog".into() }).await?.all_delivered()?;
    for n in 1..=2 {
        let task =
            CreateTask { task_id: Identifier::generate(), project_id: backlog.clone(), title: format!("Idea {n}") };
        domain.process(task).await?.all_delivered()?;
    }
    let open = domain
        .query::<ProjectTaskCounts>()
        .filter(ProjectTaskCounts::OPEN.gt(0))
        .order_by_desc(ProjectTaskCounts::OPEN)
        .limit(5)
        .fetch()
        .await?;
    println!("projects with open tasks (up to 5, most open first):");
    for counts in &open {
        let name = domain.get::<Project>(&counts.project_id).await?.map_or_else(|| "?".into(), |p| p.name);
        println!("  {name}: {} open, {} done", counts.open, counts.done);
    }
    // SQLite checkpoints its WAL into the file and leaves no `-wal` file behind.
    domain.close().await?;
    Ok(())
}

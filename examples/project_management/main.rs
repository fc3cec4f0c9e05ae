//! The project-management model of "Design Small Aggregates" written with protean.
//!
//! `cargo run --example project_management` prints the model as Graphviz DOT.

pub mod model;

use protean::prelude::*;

use model::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let domain = Domain::builder().module("project_management::model").build()?;
    println!("{}", domain.to_dot());

    let mut project = Project::builder().name("Launch").build()?;
    let ada = User::builder().name("Ada").build()?;
    let mut team = Team::builder().project_id(project.id.clone()).build()?;
    team.add_member(ada.id.clone(), Role::Lead)?;
    let mut task = Task::builder().project_id(project.id.clone()).title("Write the docs").build()?;
    task.comment(ada.id.clone(), "On it")?;
    task.complete()?;
    project.update_progress(1, 4)?;
    println!("progress: {}%", project.progress);
    task.complete()?; // completing twice raises nothing more
    println!("raised: {:?}", task.take_events());
    Ok(())
}

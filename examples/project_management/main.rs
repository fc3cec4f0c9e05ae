//! The project-management model of "Design Small Aggregates" written with protean.
//!
//! `cargo run --example project_management` prints the model as Graphviz DOT.

mod model;

use protean::prelude::*;

use model::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let domain = Domain::builder().module("project_management::model").build()?;
    println!("{}", domain.to_dot());

    let project = Project::builder().name("Launch").build()?;
    let mut task = Task::builder().project_id(project.id.clone()).title("Write the docs").build()?;
    task.complete()?;
    task.complete()?; // completing twice raises nothing more
    println!("raised: {:?}", task.take_events());
    Ok(())
}

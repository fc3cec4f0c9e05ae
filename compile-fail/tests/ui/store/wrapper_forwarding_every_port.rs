// The control case beside `wrapper_without_a_port.rs`: forwarding every port makes a
// `Store`, so the only error here is the `compile_error!` (a compile-fail case needs one).
use protean::forward_ports;
use protean::runtime::Domain;
use protean::store::MemoryStore;

struct Wrapped(MemoryStore);

forward_ports!(impl for Wrapped, to 0: Records, Outbox, Deliveries, Projections, Schedule);

fn main() {
    let _ = Domain::builder().store(Wrapped(MemoryStore::new()));
    compile_error!("every port is forwarded: only this line fails");
}

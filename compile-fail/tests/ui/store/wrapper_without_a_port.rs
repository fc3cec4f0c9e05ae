// A store that wraps another and forwards four of the five ports is not a `Store`: the
// port it left out (`Records`) is named, and nothing answers "unsupported" at run time.
use protean::forward_ports;
use protean::runtime::Domain;
use protean::store::MemoryStore;

struct Wrapped(MemoryStore);

forward_ports!(impl for Wrapped, to 0: Outbox, Deliveries, Projections, Schedule);

fn main() {
    let _ = Domain::builder().store(Wrapped(MemoryStore::new()));
}

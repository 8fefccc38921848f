//! `examples/pipeline.rs` prints what its Python twin, `examples/pipeline.py`
//! (run with CPython 3.13), prints.

#[path = "../examples/pipeline.rs"]
mod pipeline;

/// The output of `python3.13 examples/pipeline.py`.
const PYTHON_OUTPUT: &str = "\
producer-0 put job 0
producer-0 put job 1
producer-0 put job 2
producer-0 put job 3
producer-0 put job 4
producer-1 put job 5
worker-0 did job 0 in 34 ms
producer-1 put job 6
worker-2 did job 2 in 42 ms
producer-1 put job 7
worker-1 did job 1 in 49 ms
producer-1 put job 8
worker-1 did job 5 in 12 ms
producer-1 put job 9
worker-2 did job 4 in 27 ms
worker-0 did job 3 in 51 ms
worker-0 did job 8 in 23 ms
worker-1 did job 6 in 55 ms
worker-2 did job 7 in 57 ms
worker-0 did job 9 in 37 ms
all jobs done
worker-1 stops: queue shut down
worker-2 stops: queue shut down
worker-0 stops: queue shut down";

/// On the paused clock, so the order cannot depend on the machine's load.
#[test]
fn the_pipeline_prints_what_its_python_twin_prints() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let lines = rt.block_on(pipeline::pipeline());
    assert_eq!(lines.join("\n"), PYTHON_OUTPUT);
}

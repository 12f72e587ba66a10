//! A Kubernetes manifest that runs a distributed training's workers: an Indexed Job (one pod
//! per rank, `JOB_COMPLETION_INDEX` its rank) and a headless Service, so that pods resolve as
//! `<job>-<index>.<service>` and workers find rank 0, which hosts the tracker.
//!
//! Written, not applied: `kubectl apply -f` it where the cluster is (bankml holds no cluster
//! credentials). `backoffLimit: 0` because a collective cannot continue without a worker:
//! a failed pod fails the Job, and the scheduler's retry starts a whole new attempt.

use std::fmt::Write;
use std::time::Duration;

/// What the manifest is made from.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The Job's and the Service's name.
    pub name: String,
    pub image: String,
    pub workers: usize,
    /// The ReadWriteMany PersistentVolumeClaim holding the project (config/, data/buckets,
    /// data/models), mounted at [`PROJECT_MOUNT`] in every pod.
    pub claim: String,
    pub timeout: Duration,
}

/// Where the project is mounted in each pod.
pub const PROJECT_MOUNT: &str = "/bankml";
/// The tracker's port on rank 0.
pub const TRACKER_PORT: u16 = 9091;

/// The manifest, as YAML (two documents).
pub fn manifest(spec: &JobSpec) -> String {
    let JobSpec {
        name,
        image,
        workers,
        claim,
        timeout,
    } = spec;
    let seconds = timeout.as_secs().max(1);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"# {workers} bankml workers training the churn model together (XGBoost's collective).
# Written by `bankml train --workers {workers} --launcher kubernetes`; apply with
# `kubectl apply -f`. Every pod mounts the project (config/bankml.yaml, data/buckets from
# `bankml bucketize`, data/models) from the claim {claim:?} at {PROJECT_MOUNT}; rank 0 hosts
# the tracker and writes the model. All {workers} pods must run at once.
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: bankml
    app.kubernetes.io/component: {name}
spec:
  clusterIP: None
  # Rank 0's name resolves while the pods start, before any is ready.
  publishNotReadyAddresses: true
  selector:
    job-name: {name}
  ports:
    - name: tracker
      port: {TRACKER_PORT}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: bankml
    app.kubernetes.io/component: {name}
spec:
  completionMode: Indexed
  completions: {workers}
  parallelism: {workers}
  backoffLimit: 0
  # Finished Jobs go after a day, so the next run's `kubectl apply` creates a new one.
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
        app.kubernetes.io/name: bankml
        app.kubernetes.io/component: {name}
    spec:
      subdomain: {name}
      restartPolicy: Never
      containers:
        - name: worker
          image: {image}
          command:
            - bankml
            - --config
            - {PROJECT_MOUNT}/config/bankml.yaml
            - worker
            - --model
            - churn
            - --start-tracker
            - --buckets
            - {PROJECT_MOUNT}/data/buckets
            - --work-dir
            - /scratch/worker
            - --timeout
            - {seconds}s
          env:
            - name: DMLC_NUM_WORKER
              value: "{workers}"
            - name: DMLC_TRACKER_URI
              value: {name}-0.{name}
            - name: DMLC_TRACKER_PORT
              value: "{TRACKER_PORT}"
          ports:
            - name: tracker
              containerPort: {TRACKER_PORT}
          volumeMounts:
            - name: project
              mountPath: {PROJECT_MOUNT}
            - name: scratch
              mountPath: /scratch
      volumes:
        - name: project
          persistentVolumeClaim:
            claimName: {claim}
        - name: scratch
          emptyDir: {{}}
"#
    );
    out
}

//! What is installed: the container image (the Dockerfile replayed) and the manifests
//! (kustomize and the Helm chart).

mod image;
mod manifests;

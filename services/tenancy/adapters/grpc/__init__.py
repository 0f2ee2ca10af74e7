"""The gRPC servicer: proto requests to use cases and results back to protos."""

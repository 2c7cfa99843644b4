// The one error the API's decoders throw: a request body that is not what the Docker Engine API
// accepts. The HTTP layer answers it with 400 and {"message": what()}.
#pragma once

#include <stdexcept>
#include <string>

namespace swarm::api {

class BadRequest : public std::runtime_error {
 public:
  // `path` is where in the body, e.g. "TaskTemplate.ContainerSpec.Mounts[0].Type" ("" for the
  // body itself); `problem` says what is wrong and what would be accepted.
  BadRequest(std::string path, std::string problem)
      : std::runtime_error(path.empty() ? "request body: " + problem : path + ": " + problem),
        path_(std::move(path)),
        problem_(std::move(problem)) {}

  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

}  // namespace swarm::api

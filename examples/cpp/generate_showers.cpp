// generate_showers: run a caloforge ONNX export from C++ with ONNX Runtime.
//
//   generate_showers ARTIFACT_DIR E1 [E2 ...] [--seed S] [--threads T]
//                    [--input NAME=FILE.f32 ...] [--out showers.f32]
//
// ARTIFACT_DIR is the output of `caloforge export RUN --format onnx -o ARTIFACT_DIR`. The
// energies E1 ... are incident energies in MeV, one shower each. Every model input is filled
// according to its role in ARTIFACT_DIR/inputs.txt:
//   incident_energy  the energies given on the command line (MeV)
//   normal           standard-normal draws (GAN noise)
//   uniform          uniform draws in [0, 1)
//   binary, other    read from --input NAME=FILE.f32 (raw float32, N x values_per_shower),
//                    e.g. Boltzmann-machine prior samples drawn by the model's sampler
// The showers (N x V voxel energies in MeV, float32, row-major) go to --out; a summary is
// printed either way.

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct InputSpec {
  std::string name;
  int64_t values_per_shower = 0;
  std::string role;
};

std::vector<InputSpec> read_inputs(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(path + ": cannot open (is this a caloforge export?)");
  std::vector<InputSpec> specs;
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    InputSpec spec;
    if (!(fields >> spec.name >> spec.values_per_shower >> spec.role))
      throw std::runtime_error(path + ": cannot read line '" + line + "'");
    specs.push_back(spec);
  }
  return specs;
}

std::vector<float> read_floats(const std::string& path, size_t expected) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(path + ": cannot open");
  std::vector<float> values(expected);
  file.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(expected * 4));
  if (static_cast<size_t>(file.gcount()) != expected * 4)
    throw std::runtime_error(path + ": expected " + std::to_string(expected) + " float32 values");
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) {
      std::cerr << "usage: generate_showers ARTIFACT_DIR E1 [E2 ...] [--seed S] [--threads T]"
                   " [--input NAME=FILE.f32] [--out FILE.f32]\n";
      return 2;
    }
    const std::string dir = argv[1];
    std::vector<float> energies;
    std::map<std::string, std::string> input_files;
    std::string out_path;
    unsigned seed = 0;
    int threads = 1;
    for (int i = 2; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--seed" && i + 1 < argc) {
        seed = static_cast<unsigned>(std::stoul(argv[++i]));
      } else if (arg == "--threads" && i + 1 < argc) {
        threads = std::stoi(argv[++i]);
      } else if (arg == "--out" && i + 1 < argc) {
        out_path = argv[++i];
      } else if (arg == "--input" && i + 1 < argc) {
        const std::string kv = argv[++i];
        const auto eq = kv.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--input expects NAME=FILE");
        input_files[kv.substr(0, eq)] = kv.substr(eq + 1);
      } else {
        const float e = std::stof(arg);
        if (!(e > 0)) throw std::runtime_error("incident energies must be > 0 MeV, got " + arg);
        energies.push_back(e);
      }
    }
    const int64_t n = static_cast<int64_t>(energies.size());
    if (n == 0) throw std::runtime_error("give at least one incident energy in MeV");

    // One environment and session per process (or per Geant4 worker thread); creating the
    // session is the expensive part, Run() is cheap and may be called for every shower.
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "caloforge");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(threads);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    const std::string model_path = dir + "/model.onnx";
    Ort::Session session(env, model_path.c_str(), options);

    const std::vector<InputSpec> specs = read_inputs(dir + "/inputs.txt");
    if (specs.size() != session.GetInputCount())
      throw std::runtime_error("inputs.txt lists " + std::to_string(specs.size()) +
                               " inputs but model.onnx takes " +
                               std::to_string(session.GetInputCount()));

    Ort::AllocatorWithDefaultOptions allocator;
    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);

    std::vector<std::vector<float>> buffers(specs.size());
    std::vector<std::vector<int64_t>> shapes(specs.size());
    std::vector<Ort::Value> tensors;
    std::vector<std::string> names;
    for (size_t i = 0; i < specs.size(); ++i) {
      const InputSpec& spec = specs[i];
      names.push_back(session.GetInputNameAllocated(i, allocator).get());
      if (names.back() != spec.name)
        throw std::runtime_error("input " + std::to_string(i) + " is '" + names.back() +
                                 "' in model.onnx but '" + spec.name + "' in inputs.txt");
      auto info = session.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo();
      if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
        throw std::runtime_error("input '" + spec.name + "' is not float32");
      shapes[i] = info.GetShape();  // (-1 or N, d1, d2 ...): the batch dimension is free
      shapes[i][0] = n;
      const size_t count = static_cast<size_t>(n * spec.values_per_shower);
      std::vector<float>& data = buffers[i];
      if (spec.role == "incident_energy") {
        data = energies;
      } else if (input_files.count(spec.name)) {
        data = read_floats(input_files[spec.name], count);
      } else if (spec.role == "normal") {
        data.resize(count);
        for (float& x : data) x = normal(rng);
      } else if (spec.role == "uniform") {
        data.resize(count);
        for (float& x : data) x = uniform(rng);
      } else {
        throw std::runtime_error("input '" + spec.name + "' has role '" + spec.role +
                                 "': give its values with --input " + spec.name + "=FILE.f32");
      }
      tensors.push_back(Ort::Value::CreateTensor<float>(memory, data.data(), data.size(),
                                                        shapes[i].data(), shapes[i].size()));
    }

    std::vector<const char*> input_names;
    for (const std::string& name : names) input_names.push_back(name.c_str());
    const char* output_names[] = {"showers"};
    std::vector<Ort::Value> outputs = session.Run(Ort::RunOptions{nullptr}, input_names.data(),
                                                  tensors.data(), tensors.size(), output_names, 1);

    const std::vector<int64_t> out_shape = outputs[0].GetTensorTypeAndShapeInfo().GetShape();
    const int64_t n_voxels = out_shape[1];
    const float* showers = outputs[0].GetTensorData<float>();
    for (int64_t s = 0; s < n; ++s) {
      double total = 0;
      for (int64_t v = 0; v < n_voxels; ++v) total += showers[s * n_voxels + v];
      std::cout << "shower " << s << ": E_inc " << energies[s] << " MeV, deposited " << total
                << " MeV in " << n_voxels << " voxels\n";
    }
    if (!out_path.empty()) {
      std::ofstream out(out_path, std::ios::binary);
      out.write(reinterpret_cast<const char*>(showers),
                static_cast<std::streamsize>(n * n_voxels * sizeof(float)));
      std::cout << "wrote " << out_path << " (" << n << " x " << n_voxels << " float32, MeV)\n";
    }
    return 0;
  } catch (const Ort::Exception& e) {
    std::cerr << "onnxruntime error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}

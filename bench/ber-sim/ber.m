% Reference BER simulation in GNU Octave, vectorised per frame the way the AWS
% sample's MATLAB worker does it: randi bits, BPSK 2*b-1, randn noise, hard
% decision. Used by run.sh as the baseline ber-sim is compared against.
%
% Usage: octave-cli --no-gui --quiet ber.m EBN0_DB FRAMES BITS_PER_FRAME SEED
% Prints one JSON line: {"tool": "octave", "ebn0_db", "bits", "errors", "ber", "elapsed_s"}.
args = argv();
if numel(args) != 4
  fprintf(stderr, "usage: ber.m EBN0_DB FRAMES BITS_PER_FRAME SEED\n");
  exit(2);
end
ebn0_db = str2double(args{1});
frames = str2double(args{2});
bpf = str2double(args{3});
seed = str2double(args{4});
if any(isnan([ebn0_db frames bpf seed])) || frames < 1 || bpf < 1
  fprintf(stderr, "ber.m: bad arguments\n");
  exit(2);
end
rand("state", seed);
randn("state", seed);
sigma = sqrt(1 / (2 * 10^(ebn0_db / 10)));
errors = 0;
t0 = tic;
for f = 1:frames
  b = randi([0 1], 1, bpf);
  s = 2 * b - 1;
  r = s + sigma * randn(1, bpf);
  errors = errors + sum((r > 0) != b);
end
elapsed = toc(t0);
bits = frames * bpf;
printf("{\"tool\": \"octave\", \"ebn0_db\": %g, \"bits\": %d, \"errors\": %d, \"ber\": %.6e, \"elapsed_s\": %.6f}\n", ...
       ebn0_db, bits, errors, errors / bits, elapsed);

# R's flexmix on the toolkit's default model (linear experts with intercepts and a noise level each, a softmax gate
# on the same covariates): one fit from one seeded start, EM to a relative tolerance, the model written in the
# toolkit's JSON schema so that `moe eval` scores it against the truth like any other fit.
# Usage: Rscript bench/flexmix/fit.R data.csv k model.json [tolerance]
suppressMessages(library(flexmix))
args <- commandArgs(TRUE)
data <- read.csv(args[1])
k <- as.integer(args[2])
tolerance <- if (length(args) >= 4) as.numeric(args[4]) else 1e-8
xs <- setdiff(names(data), "y")
started <- proc.time()[["elapsed"]]
set.seed(1)
fit <- flexmix(as.formula(paste("y ~", paste(xs, collapse = " + "))), data = data, k = k,
               concomitant = FLXPmultinom(as.formula(paste("~", paste(xs, collapse = " + ")))),
               control = list(tolerance = tolerance, iter.max = 2000))
seconds <- proc.time()[["elapsed"]] - started
p <- parameters(fit)                                  # rows coef.(Intercept), coef.x1.., sigma; a column per expert
w <- fit@concomitant@coef                             # rows (Intercept), x1..; expert 1 is flexmix's reference
kk <- ncol(p)
row <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ", "), "]")
a <- t(p[paste0("coef.", xs), , drop = FALSE])
gate <- t(w[xs, , drop = FALSE]); gate <- sweep(gate, 2, gate[kk, ])      # the toolkit's reference: the last expert
json <- paste0('{\n  "k": ', kk, ',\n  "d": ', length(xs), ',\n  "activation": { "name": "identity", "slope": 0 },\n',
  '  "sigma": ', sprintf("%.17g", sqrt(mean(p["sigma", ]^2))), ',\n',
  '  "regressors": [', paste(apply(a, 1, row), collapse = ", "), '],\n',
  '  "gating": [', paste(apply(gate[-kk, , drop = FALSE], 1, row), collapse = ", "), '],\n',
  '  "regressorIntercepts": ', row(p["coef.(Intercept)", ]), ',\n',
  '  "gatingIntercepts": ', row((w["(Intercept)", ] - w["(Intercept)", kk])[-kk]), ',\n',
  '  "sigmas": ', row(p["sigma", ]), '\n}\n')
writeLines(json, args[3])
cat(sprintf("flexmix: k = %d, %d EM iterations, log-likelihood %.6f, fit %.2f s\n", kk, fit@iter, logLik(fit), seconds))

# flexmix's reference fits of dmft with its factors (tests/data/README.md): writes dmft.csv (lBegin = log(Begin + 0.5),
# the factors as text) and prints the best of 20 starts of two Poisson experts with a gate on the same columns, and
# one Poisson regression. Run: Rscript bench/flexmix/fit-dmft.R [formula-terms], e.g. with "lBegin + Gender + Ethnic".
args <- commandArgs(trailingOnly = TRUE)
terms <- if (length(args) > 0) args[1] else "lBegin + Gender + Ethnic + Treatment"
suppressMessages(library(flexmix))
data(dmft, package = "flexmix")
d <- data.frame(End = dmft$End, lBegin = log(dmft$Begin + 0.5), Gender = as.character(dmft$Gender),
                Ethnic = as.character(dmft$Ethnic), Treatment = as.character(dmft$Treatment))
write.csv(d, "dmft.csv", row.names = FALSE, quote = FALSE)
set.seed(1)
best <- -Inf
for (rep in 1:20) {
  f <- try(flexmix(as.formula(paste("End ~", terms)), data = d, k = 2,
                   model = FLXMRglm(family = "poisson"),
                   concomitant = FLXPmultinom(as.formula(paste("~", terms))),
                   control = list(iter.max = 2000, tolerance = 1e-10)), silent = TRUE)
  if (!inherits(f, "try-error")) {
    ll <- as.numeric(logLik(f)); cat(rep, ll, f@k, "\n")
    if (f@k == 2 && ll > best) { best <- ll; bf <- f }
  }
}
cat("best", sprintf("%.4f", best), "\n")
print(parameters(bf)); print(parameters(bf, which = "concomitant"))
f1 <- glm(as.formula(paste("End ~", terms)), data = d, family = poisson)
cat("k1", sprintf("%.4f", as.numeric(logLik(f1))), "\n")
